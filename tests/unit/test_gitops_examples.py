"""examples/gitops: the workloads render with the real `kubectl kustomize` into objects the
API accepts (Kubernetes 1.33 schemas, the project's CRDs), and the Argo CD Application and the
Flux objects carry their kinds' required fields and point at those workloads."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from bigmodel.api import BigModelJob, BigModelService, parse_resource
from bigmodel.api.crds import crds
from kubesandbox.apiserver.crdschema import CRDSchema
from kubesandbox.testing import tool
from support.helmchart import KUBE_VERSION, ROOT

GITOPS = ROOT / "examples" / "gitops"
WORKLOADS = GITOPS / "workloads"
MODELS: dict[str, type[BigModelJob | BigModelService]] = {
    "BigModelJob": BigModelJob,
    "BigModelService": BigModelService,
}
KUBECTL = tool("kubectl")
requires_kubectl = pytest.mark.skipif(
    shutil.which(KUBECTL) is None,
    reason="kubectl is not installed (`make venv` puts it in .venv/bin)",
)
SCHEMAS = {
    crd["spec"]["names"]["kind"]: CRDSchema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    for crd in crds()
}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@cache
def rendered() -> list[dict[str, Any]]:
    """`kubectl kustomize examples/gitops/workloads`: what Argo CD and Flux apply."""
    done = subprocess.run(
        [KUBECTL, "kustomize", str(WORKLOADS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


# Required fields and closed specs of the GitOps tools' kinds, after their CRDs
# (argoproj.io/v1alpha1 Application, source.toolkit.fluxcd.io/v1 GitRepository,
# kustomize.toolkit.fluxcd.io/v1 Kustomization): a misspelt or missing field fails.
DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"}
OBJECT_REF = {"type": "object", "required": ["name", "namespace"]}


def tool_schema(api_version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "metadata": OBJECT_REF,
            "spec": {"type": "object", "additionalProperties": False, **spec},
        },
    }


TOOL_KINDS = {
    "Application": tool_schema(
        "argoproj.io/v1alpha1",
        {
            "required": ["project", "destination", "source"],
            "properties": {
                "project": {"type": "string", "minLength": 1},
                "source": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["repoURL"],
                    "properties": {
                        "repoURL": {"type": "string"},
                        "targetRevision": {"type": "string"},
                        "path": {"type": "string"},
                    },
                },
                "destination": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"server": {"type": "string"}, "namespace": {"type": "string"}},
                },
                "syncPolicy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "automated": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "prune": {"type": "boolean"},
                                "selfHeal": {"type": "boolean"},
                            },
                        },
                        "syncOptions": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    ),
    "GitRepository": tool_schema(
        "source.toolkit.fluxcd.io/v1",
        {
            "required": ["interval", "url"],
            "properties": {
                "interval": DURATION,
                "url": {"type": "string", "pattern": "^(http|https|ssh)://.*$"},
                "ref": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {k: {"type": "string"} for k in ("branch", "tag", "commit")},
                },
            },
        },
    ),
    "Kustomization": tool_schema(
        "kustomize.toolkit.fluxcd.io/v1",
        {
            "required": ["interval", "prune", "sourceRef"],
            "properties": {
                "interval": DURATION,
                "retryInterval": DURATION,
                "timeout": DURATION,
                "path": {"type": "string"},
                "prune": {"type": "boolean"},
                "wait": {"type": "boolean"},
                "sourceRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["kind", "name"],
                    "properties": {
                        "kind": {"enum": ["OCIRepository", "GitRepository", "Bucket"]},
                        "name": {"type": "string"},
                    },
                },
            },
        },
    ),
}
TOOL_FILES = [GITOPS / "argocd" / "application.yaml", GITOPS / "flux" / "sync.yaml"]


# -- The workloads ----------------------------------------------------------------------------


@requires_kubectl
def test_the_workloads_render_a_namespace_a_job_and_a_service() -> None:
    kinds = sorted(o["kind"] for o in rendered())
    assert kinds == ["BigModelJob", "BigModelService", "Namespace"]
    for obj in rendered():
        assert obj["metadata"]["labels"]["team"] == "ml-platform"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "ml-team"


@requires_kubectl
def test_every_rendered_object_is_accepted_by_its_schema() -> None:
    for obj in rendered():
        kind = obj["kind"]
        if kind in SCHEMAS:
            schema = SCHEMAS[kind]
            assert schema.unknown_fields(obj) == [], kind
            assert schema.validate(schema.default(schema.prune(obj)), None) == [], kind
            assert parse_resource(MODELS[kind], obj).metadata["name"] == obj["metadata"]["name"]
        else:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


@requires_kubectl
def test_the_job_is_never_deleted_behind_gits_back() -> None:
    """A GitOps tool re-creates what disappears: a job deleted by its TTL would train again."""
    [job] = [o for o in rendered() if o["kind"] == "BigModelJob"]
    assert "ttlSecondsAfterFinished" not in job["spec"].get("runPolicy", {})


@requires_kubectl
def test_the_service_is_scaled_without_writing_its_spec() -> None:
    """Git owns spec.replicas: the operator's autoscaler writes only status."""
    [service] = [o for o in rendered() if o["kind"] == "BigModelService"]
    assert "replicas" not in service["spec"] and "autoscaling" in service["spec"]


# -- Argo CD and Flux -------------------------------------------------------------------------


@pytest.mark.parametrize("path", TOOL_FILES, ids=lambda p: p.parent.name)
def test_the_tool_objects_carry_their_required_fields(path: Path) -> None:
    for obj in load_all(path):
        jsonschema.validate(obj, TOOL_KINDS[obj["kind"]])


def test_argo_cd_and_flux_sync_the_workloads_from_the_same_repository() -> None:
    [application] = load_all(GITOPS / "argocd" / "application.yaml")
    repository, kustomization = load_all(GITOPS / "flux" / "sync.yaml")
    workloads = WORKLOADS.relative_to(ROOT)
    assert Path(application["spec"]["source"]["path"]) == workloads
    assert Path(kustomization["spec"]["path"]) == workloads
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "ml-platform"}
    assert repository["metadata"]["name"] == "ml-platform"
    assert repository["spec"]["url"] == application["spec"]["source"]["repoURL"]
    assert application["spec"]["destination"]["namespace"] == "ml-team"


def test_flux_waits_on_the_health_of_what_it_applied() -> None:
    _, kustomization = load_all(GITOPS / "flux" / "sync.yaml")
    assert kustomization["spec"]["wait"] is True
