"""Pod pieces both kinds build the same way (pure): child metadata, resources with GPUs, the
scheduling fields, machines to avoid, /dev/shm, the pod template overlay, and the checks of
settings the operator owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bigmodel.api.core import GPU_RESOURCE, PodOptions

MANAGER = "bigmodel-operator"
"""`app.kubernetes.io/managed-by` of every child."""
HOSTNAME_LABEL = "kubernetes.io/hostname"
"""The well-known node label holding the node's name."""
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
# Keys on a resource that belong to tools, not to the user: never copied to children. The
# GitOps and packaging tools mark what they apply from Git; on a child, Argo CD's tracking id
# or instance label would make Argo CD claim (and prune) a pod the operator owns, and Flux's
# or Helm's would list it in their inventories.
_PRIVATE_KEY_PREFIXES = (
    "kopf.zalando.org/",
    "bigmodel.dev/",
    "kubectl.kubernetes.io/",
    "argocd.argoproj.io/",
    "kustomize.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
    "meta.helm.sh/",
    "helm.sh/",
    "config.k8s.io/",
)


def public(items: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations without kopf's, kubectl's and the operator's own keys."""
    return {k: v for k, v in items.items() if not k.startswith(_PRIVATE_KEY_PREFIXES)}


def recommended_labels(app: str, name: str, component: str) -> dict[str, str]:
    """Kubernetes' recommended `app.kubernetes.io/*` labels of a child of resource `name`."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "bigmodel",
        "app.kubernetes.io/managed-by": MANAGER,
    }


def child_metadata(
    owner: Mapping[str, Any], name: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """Metadata of a child named `name`: the owner's public labels and annotations under
    `labels`, in the owner's namespace (`owner` is the resource's metadata)."""
    return {
        "name": name,
        "namespace": owner.get("namespace"),
        "labels": {**public(owner.get("labels") or {}), **labels},
        "annotations": public(owner.get("annotations") or {}),
    }


def dump(items: Iterable[Any]) -> list[dict[str, Any]]:
    """API models as JSON objects (camelCase, unset fields left out)."""
    return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]


def env(name: str, value: str | int) -> dict[str, Any]:
    """One plain environment variable."""
    return {"name": name, "value": str(value)}


def resources(spec: PodOptions, gpus: int) -> dict[str, Any]:
    """Requests and limits of the main container, `gpus` GPUs in both."""
    requests: dict[str, Any] = dict(spec.resources.requests)
    limits: dict[str, Any] = dict(spec.resources.limits)
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    found = {"requests": requests, "limits": limits}
    return {k: v for k, v in found.items() if v}


def scheduling(spec: PodOptions) -> dict[str, Any]:
    """nodeSelector, tolerations, affinity and the other scheduling fields that are set."""
    fields: dict[str, Any] = {
        "nodeSelector": spec.node_selector,
        "tolerations": dump(spec.tolerations),
        "affinity": spec.affinity,
        "priorityClassName": spec.priority_class_name,
        "schedulerName": spec.scheduler_name,
        "serviceAccountName": spec.service_account_name,
        "imagePullSecrets": dump(spec.image_pull_secrets),
    }
    return {k: v for k, v in fields.items() if v}


def avoiding_machines(
    affinity: Mapping[str, Any] | None, machines: Sequence[str], required: bool
) -> dict[str, Any]:
    """`affinity` with the nodes `machines` (kubernetes.io/hostname) avoided: added to every
    required node selector term (they are ORed, so each must exclude them) when `required`,
    else as a preferred term of the largest weight. Unchanged when `machines` is empty."""
    out = dict(affinity or {})
    if not machines:
        return out
    away = {"key": HOSTNAME_LABEL, "operator": "NotIn", "values": sorted(set(machines))}
    node = dict(out.get("nodeAffinity") or {})
    if required:
        key = "requiredDuringSchedulingIgnoredDuringExecution"
        terms = (node.get(key) or {}).get("nodeSelectorTerms") or [{}]
        node[key] = {
            "nodeSelectorTerms": [
                {**t, "matchExpressions": [*(t.get("matchExpressions") or ()), away]} for t in terms
            ]
        }
    else:
        key = "preferredDuringSchedulingIgnoredDuringExecution"
        preference = {"weight": 100, "preference": {"matchExpressions": [away]}}
        node[key] = [*(node.get(key) or ()), preference]
    out["nodeAffinity"] = node
    return out


def shm_volume(spec: PodOptions) -> dict[str, Any]:
    """The in-memory /dev/shm of `shmSize` (the container default of 64Mi is too small)."""
    return {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}}


def shm_mount() -> dict[str, Any]:
    return {"name": SHM_VOLUME, "mountPath": SHM_PATH}


def merge(base: Any, overlay: Any) -> Any:
    """`overlay` merged into `base`: objects key by key, lists of named objects (containers,
    volumes, env) by name, any other value replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(overlay, list) and _named(base + overlay):
        by_name = {item["name"]: item for item in overlay}
        kept = [merge(item, by_name.pop(item["name"], item)) for item in base]
        return kept + list(by_name.values())
    return overlay


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def owned_settings_errors(
    spec: PodOptions,
    main_container: str,
    owned_env: Callable[[str], bool],
    owned_pod_fields: Mapping[str, str | None],
    owned_container_fields: Mapping[str, str],
) -> list[str]:
    """Settings of `spec` that the operator owns (the schema cannot see them), each naming
    its field: operator environment variables, the /dev/shm volume and mount, and fields of
    the pod template overlay (each owned field maps to the spec field to use instead)."""
    errors = [
        f"spec.env[{i}].name: {e.name} is set by the operator"
        for i, e in enumerate(spec.env)
        if owned_env(e.name)
    ]
    errors += [
        f"spec.volumes[{i}].name: {SHM_VOLUME} is the operator's /dev/shm volume"
        for i, v in enumerate(spec.volumes)
        if v.name == SHM_VOLUME
    ]
    errors += [
        f"spec.volumeMounts[{i}].mountPath: {SHM_PATH} is set by the operator (use shmSize)"
        for i, m in enumerate(spec.volume_mounts)
        if m.mount_path == SHM_PATH
    ]
    overlay = spec.pod_template.spec
    errors += [
        f"spec.podTemplate.spec.{key}: set by the operator" + (f" (use {use})" if use else "")
        for key, use in owned_pod_fields.items()
        if key in overlay
    ]
    for i, container in enumerate(overlay.get("containers") or ()):
        if not isinstance(container, dict) or container.get("name") != main_container:
            continue
        path = f"spec.podTemplate.spec.containers[{i}]"
        errors += [
            f"{path}.{key}: set by the operator (use {use})"
            for key, use in owned_container_fields.items()
            if key in container
        ]
        errors += [
            f"{path}.env[{j}].name: {e.get('name')} is set by the operator"
            for j, e in enumerate(container.get("env") or ())
            if isinstance(e, dict) and owned_env(str(e.get("name")))
        ]
    return errors
