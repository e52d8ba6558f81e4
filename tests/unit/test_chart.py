"""The Helm chart: lints and renders for every toggle combination, every object is valid
Kubernetes 1.33, the values are documented and checked, and the CRDs are the generated ones."""

from __future__ import annotations

import copy
import itertools
import json
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

import bigmodel
from bigmodel.api.crds import write_crds
from support.helmchart import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    ROOT,
    helm,
    only,
    render,
    requires_helm,
    values_args,
    values_table,
)

pytestmark = requires_helm


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, recursively (like Helm merges values files)."""
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


TOGGLES: dict[str, dict[str, Any]] = {
    "namespaced": {"watch": {"namespaces": ["team-a", "team-b"]}},
    "monitoring": {
        "monitoring": {
            "labels": {"release": "kube-prometheus-stack"},
            "serviceMonitor": {"enabled": True},
            "podMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "BigModel"}},
        }
    },
    "crds-templated": {"crds": {"templated": True}},
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
            ],
            "apiServer": [{"ipBlock": {"cidr": "10.96.0.1/32"}}],
        }
    },
    "no-rbac": {
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "platform-operator"},
    },
    "customized": {
        "image": {
            "repository": "registry.example.com/bigmodel-operator",
            "digest": "sha256:" + "a" * 64,
        },
        "imagePullSecrets": [{"name": "regcred"}],
        "extraArgs": ["--verbose"],
        "extraEnv": [{"name": "BIGMODEL_RESTART_BACKOFF", "value": "5"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "bigmodel.dev/pool", "operator": "NotIn", "values": ["gpu"]}
                            ]
                        }
                    ]
                }
            }
        },
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"example.com/team": "ml-platform"},
        "podLabels": {"team": "ml-platform"},
        "serviceAccount": {"annotations": {"iam.example.com/role": "bigmodel"}},
        "rbac": {"listNodes": False, "gangScheduling": False},
        "metrics": {"service": {"annotations": {"prometheus.io/scrape": "true"}}},
    },
}


def combination_values(names: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        values = deep_merge(values, TOGGLES[name])
    return values


COMBINATIONS = [
    names for size in range(len(TOGGLES) + 1) for names in itertools.combinations(TOGGLES, size)
]
COMBINATION_IDS = ["+".join(names) or "defaults" for names in COMBINATIONS]


@cache
def rendered(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return render(combination_values(names))


# Minimal schemas of the Prometheus Operator kinds (their CRDs are not installed here, and
# kubernetes_validate only knows built-in kinds): every field this chart writes must be a
# field of monitoring.coreos.com/v1, so a misspelt one fails. A subset of the real schemas.
RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "action": {"type": "string"},
        "separator": {"type": "string"},
    },
}
ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port"],
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string"},
        "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
        "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array", "items": RELABELING},
    },
}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    },
}
NAMESPACE_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "any": {"type": "boolean"},
        "matchNames": {"type": "array", "items": {"type": "string"}},
    },
}
RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
    "properties": {
        "record": {"type": "string"},
        "alert": {"type": "string"},
        "expr": {"type": ["string", "integer"]},
        "for": {"type": "string"},
        "keep_firing_for": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def monitoring_schema(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": {
                "type": "object",
                "required": ["name", "namespace"],
                "properties": {"labels": {"additionalProperties": {"type": "string"}}},
            },
            "spec": {"type": "object", "additionalProperties": False, **spec},
        },
    }


CUSTOM_KINDS = {
    "ServiceMonitor": monitoring_schema(
        {
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": NAMESPACE_SELECTOR,
                "endpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
            },
        }
    ),
    "PodMonitor": monitoring_schema(
        {
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": NAMESPACE_SELECTOR,
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
            },
        }
    ),
    "PrometheusRule": monitoring_schema(
        {
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string"},
                            "limit": {"type": "integer"},
                            "labels": {"type": "object"},
                            "rules": {"type": "array", "items": RULE},
                        },
                    },
                }
            },
        }
    ),
}


def validate(obj: dict[str, Any]) -> None:
    """Kubernetes 1.33's schema for built-in kinds, the minimal ones above for the others."""
    if obj["kind"] in CUSTOM_KINDS:
        jsonschema.validate(obj, CUSTOM_KINDS[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


# -- Chart metadata --------------------------------------------------------------------------


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == bigmodel.__version__
    assert chart["version"] == bigmodel.__version__


def test_default_image_tag_is_the_app_version() -> None:
    deployment = only(rendered(()), "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"bigmodel-operator:{bigmodel.__version__}"


# -- Lint, render, validate ------------------------------------------------------------------


@pytest.mark.parametrize("names", COMBINATIONS, ids=COMBINATION_IDS)
def test_helm_lint_strict_passes(names: tuple[str, ...]) -> None:
    done = helm(
        "lint", "--strict", "--kube-version", KUBE_VERSION, *values_args(combination_values(names))
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("names", COMBINATIONS, ids=COMBINATION_IDS)
def test_every_rendered_object_is_valid(names: tuple[str, ...]) -> None:
    objects = rendered(names)
    assert objects
    for obj in objects:
        try:
            validate(obj)
        except Exception as exc:  # kubernetes_validate and jsonschema raise their own types
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc}")


def test_rendered_objects_have_the_chart_labels_and_unique_names() -> None:
    objects = rendered(tuple(TOGGLES))
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), keys
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "bm", obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]


def test_crds_of_the_chart_are_valid_apiextensions_v1() -> None:
    crds = [o for o in render(include_crds=True) if o["kind"] == "CustomResourceDefinition"]
    assert {c["metadata"]["name"] for c in crds} == {
        "bigmodeljobs.bigmodel.dev",
        "bigmodelservices.bigmodel.dev",
    }
    for crd in crds:
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)


# -- CRDs: generated, and templated on request -----------------------------------------------


def test_chart_crds_are_the_generated_ones(tmp_path: Path) -> None:
    generated = {path.name: path.read_text() for path in write_crds(tmp_path)}
    in_chart = {path.name: path.read_text() for path in (CHART / "crds").glob("*.yaml")}
    assert sorted(in_chart) == sorted(generated), "run `make crds`"
    for name, text in generated.items():
        assert in_chart[name] == text, (
            f"charts/bigmodel-operator/crds/{name} is stale: run `make crds`"
        )
        assert (ROOT / "crds" / name).read_text() == text, f"crds/{name} is stale: run `make crds`"


def test_templated_crds_equal_the_crd_files_and_are_kept_on_uninstall() -> None:
    templated = {
        o["metadata"]["name"]: o
        for o in render({"crds": {"templated": True}})
        if o["kind"] == "CustomResourceDefinition"
    }
    files = {
        crd["metadata"]["name"]: crd
        for path in (CHART / "crds").glob("*.yaml")
        for crd in [yaml.safe_load(path.read_text())]
    }
    assert sorted(templated) == sorted(files)
    for name, crd in templated.items():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["spec"] == files[name]["spec"], name
    assert not [o for o in render() if o["kind"] == "CustomResourceDefinition"]


def test_go_yaml_reads_the_crds_like_the_generator_wrote_them(tmp_path: Path) -> None:
    """helm and kubectl parse YAML as 1.1 (`n`, `yes`, `off` are booleans): a chart whose
    template re-serializes each CRD with Helm's own parser shows what the cluster gets."""
    probe = tmp_path / "probe"
    (probe / "templates").mkdir(parents=True)
    shutil.copytree(CHART / "crds", probe / "files")
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.0.1\n")
    (probe / "templates" / "crds.yaml").write_text(
        '{{- range $path, $_ := .Files.Glob "files/*.yaml" }}\n---\n'
        "{{ $.Files.Get $path | fromYaml | toJson }}\n{{- end }}\n"
    )
    done = helm("template", "probe", chart=probe)
    assert done.returncode == 0, done.stderr
    as_go_reads = {d["metadata"]["name"]: d for d in yaml.safe_load_all(done.stdout) if d}
    for path in (CHART / "crds").glob("*.yaml"):
        written = yaml.safe_load(path.read_text())
        assert as_go_reads[written["metadata"]["name"]] == written, path.name


# -- The Deployment --------------------------------------------------------------------------


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = only(objects, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def test_operator_command_is_explicit_bigmodel_run_with_the_ports() -> None:
    container = operator_container(render({"ports": {"health": 9091, "metrics": 9090}}))
    assert container["command"] == ["bigmodel"]
    assert container["args"] == ["run", "--health-port=9091", "--metrics-port=9090"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 9091, "metrics": 9090}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "health"}


def test_command_line_is_accepted_by_the_bigmodel_parser() -> None:
    from bigmodel.cli import build_parser

    container = operator_container(rendered(("namespaced",)))
    args = build_parser().parse_args(container["args"])
    assert args.command == "run"
    assert args.namespace == ["team-a", "team-b"]
    assert (args.health_port, args.metrics_port) == (8081, 8080)


def test_watched_namespaces_become_namespace_args_sorted_and_unique() -> None:
    container = operator_container(render({"watch": {"namespaces": ["b", "a"]}}))
    assert container["args"][3:] == ["--namespace=a", "--namespace=b"]


def test_extra_args_and_env_are_appended() -> None:
    container = operator_container(rendered(("customized",)))
    assert container["args"][-1] == "--verbose"
    assert {"name": "BIGMODEL_RESTART_BACKOFF", "value": "5"} in container["env"]


def test_digest_pins_the_image() -> None:
    container = operator_container(rendered(("customized",)))
    assert container["image"] == "registry.example.com/bigmodel-operator@sha256:" + "a" * 64


def test_scheduling_constraints_reach_the_pod() -> None:
    pod = only(rendered(("customized",)), "Deployment")["spec"]["template"]["spec"]
    customized = TOGGLES["customized"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert pod[key] == customized[key], key


# -- Values: documented and checked ----------------------------------------------------------


def test_every_values_key_has_a_comment_and_a_schema_entry() -> None:
    from support.helmchart import schema_keys, values_docs

    schema = json.loads((CHART / "values.schema.json").read_text())
    docs = values_docs()
    assert sorted(d.path for d in docs) == sorted(schema_keys(schema))
    assert [d.path for d in docs if not d.comment] == []


def test_values_yaml_is_valid_against_its_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


BAD_VALUES = [
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    ({"ports": {"health": -1}}, "at '/ports/health': minimum: got -1, want 1"),
    ({"ports": {"metrics": 70000}}, "at '/ports/metrics': maximum: got 70,000, want 65,535"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    ({"watch": {"namespaces": ["Team_A"]}}, "at '/watch/namespaces/0'"),
    ({"monitoring": {"podMonitor": {"interval": "15"}}}, "at '/monitoring/podMonitor/interval'"),
    ({"image": {"digest": "latest"}}, "at '/image/digest'"),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_schema_rejects_bad_values_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    done = helm("template", "bm", *values_args(values))
    assert done.returncode != 0
    print(done.stderr)  # the message a user sees (pytest -s shows it)
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr


def test_service_monitor_without_metrics_service_is_refused() -> None:
    values = {
        "monitoring": {"serviceMonitor": {"enabled": True}},
        "metrics": {"service": {"enabled": False}},
    }
    done = helm("template", "bm", *values_args(values))
    assert done.returncode != 0
    assert "monitoring.serviceMonitor.enabled needs metrics.service.enabled" in done.stderr


def test_install_docs_carry_the_current_values_table() -> None:
    docs = (ROOT / "docs" / "install.md").read_text()
    assert values_table() in docs, (
        "docs/install.md's values table is stale: paste `python tests/support/helmchart.py`"
    )


# -- Monitoring ------------------------------------------------------------------------------


def test_monitoring_objects_only_when_enabled() -> None:
    kinds = {o["kind"] for o in rendered(())}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"}
    monitored = {o["kind"] for o in rendered(("monitoring",))}
    assert {"ServiceMonitor", "PodMonitor", "ConfigMap"} <= monitored


def test_service_monitor_scrapes_the_metrics_service() -> None:
    objects = rendered(("monitoring",))
    service, monitor = only(objects, "Service"), only(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert service["metadata"]["labels"][key] == value
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert [p["name"] for p in service["spec"]["ports"]] == [
        monitor["spec"]["endpoints"][0]["port"]
    ]
    deployment = only(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_pod_monitor_selects_managed_pods_and_relabels_the_bigmodel_labels() -> None:
    monitor = only(rendered(("monitoring",)), "PodMonitor")
    assert monitor["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "bigmodel-operator"}
    }
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics"
    mapping = {r["sourceLabels"][0]: r["targetLabel"] for r in endpoint["relabelings"]}
    assert mapping["__meta_kubernetes_pod_label_bigmodel_dev_job"] == "bigmodel_dev_job"
    assert mapping["__meta_kubernetes_pod_label_bigmodel_dev_node_rank"] == "bigmodel_dev_node_rank"


def test_pod_monitor_is_limited_to_the_watched_namespaces() -> None:
    monitor = only(rendered(("namespaced", "monitoring")), "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_pod_monitor_matches_the_labels_and_port_of_node_pods() -> None:
    from bigmodel.manifests.job import METRICS_PORT_NAME
    from bigmodel.manifests.pods import MANAGER

    endpoint = only(rendered(("monitoring",)), "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == METRICS_PORT_NAME
    assert MANAGER == "bigmodel-operator"


DASHBOARD_METRICS = [
    "bigmodel_node_task_seconds",
    "bigmodel_task_seconds",
    "bigmodel_service_quality",
    "bigmodel_node_relative_speed",
    "bigmodel_stragglers",
    "bigmodel_jobs",
    "bigmodel_job_restarts_total",
    "bigmodel_reconcile_errors_total",
    "bigmodel_node_step_seconds",
    "bigmodel_node_straggler_cause",
    "bigmodel_node_input_wait_seconds",
    "bigmodel_node_compute_seconds",
    "bigmodel_node_communication_seconds",
    "bigmodel_node_machine_sched_delay",
    "bigmodel_node_machine_gpu_sm_clock_mhz",
    "bigmodel_service_desired_replicas",
    "bigmodel_service_ready_replicas",
    "bigmodel_service_in_flight",
    "bigmodel:service_request_seconds:p99_5m",
    "bigmodel:service_time_to_first_token_seconds:p90_5m",
    "bigmodel:service_time_per_output_token_seconds:p90_5m",
]


def test_grafana_dashboard_config_map_holds_the_dashboard() -> None:
    config_map = only(rendered(("monitoring",)), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["bigmodel-operator.json"])
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in DASHBOARD_METRICS:
        assert metric in exprs, metric
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


RULES = {
    "groups": [
        {
            "name": "bigmodel.test",
            "rules": [
                {"record": "bigmodel:task_seconds:sum", "expr": "sum(bigmodel_node_step_seconds)"},
                {
                    "alert": "BigModelTest",
                    "expr": "vector(1)",
                    "for": "5m",
                    "annotations": {"summary": "{{ $labels.bigmodel_dev_job }} is slow"},
                },
            ],
        }
    ]
}


def test_prometheus_rule_wraps_the_rules_file(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "files" / "prometheus-rules.yaml").write_text("# rules\n" + yaml.safe_dump(RULES))
    objects = render(TOGGLES["monitoring"], chart=chart)
    rule = only(objects, "PrometheusRule")
    validate(dict(rule))
    assert rule["spec"] == RULES  # `{{ $labels }}` is passed through, not templated by Helm
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_prometheus_rule_waits_for_the_rules_file(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "files" / "prometheus-rules.yaml").unlink(missing_ok=True)
    assert not [
        o for o in render(TOGGLES["monitoring"], chart=chart) if o["kind"] == "PrometheusRule"
    ]


def test_shipped_prometheus_rules_are_wrapped_when_present() -> None:
    if not (CHART / "files" / "prometheus-rules.yaml").exists():
        pytest.skip(
            "files/prometheus-rules.yaml is not written yet (the rules come with telemetry)"
        )
    rule = only(rendered(("monitoring",)), "PrometheusRule")
    shipped = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]


# -- NetworkPolicy ---------------------------------------------------------------------------


def test_network_policy_opens_only_the_operator_ports_to_the_given_peers() -> None:
    policy = only(rendered(("network-policy",)), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert ingress["from"] == TOGGLES["network-policy"]["networkPolicy"]["ingressFrom"]
    assert sorted(p["port"] for p in ingress["ports"]) == ["health", "metrics"]
    api = policy["egress"][0]
    assert api["to"] == [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    assert sorted(p["port"] for p in api["ports"]) == [443, 6443]


def test_network_policy_without_peers_denies_all_ingress() -> None:
    policy = only(render({"networkPolicy": {"enabled": True}}), "NetworkPolicy")["spec"]
    assert policy["ingress"] == []


def test_helm_package_builds(tmp_path: Path) -> None:
    done = helm("package", "--destination", str(tmp_path))
    assert done.returncode == 0, done.stderr
    archive = tmp_path / f"bigmodel-operator-{bigmodel.__version__}.tgz"
    listing = subprocess.run(
        ["tar", "-tzf", str(archive)], capture_output=True, text=True, check=True
    )
    assert "bigmodel-operator/crds/bigmodel.dev_bigmodeljobs.yaml" in listing.stdout
    assert "bigmodel-operator/files/grafana-dashboard.json" in listing.stdout
