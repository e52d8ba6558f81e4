"""The resource types the sandbox serves: built-ins, plus those CRDs add at runtime.

RBAC kinds are stored and served but never enforced: the sandbox has a single, all-powerful
user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"
ALL_VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class ScalePaths:
    """Where the scale subresource reads and writes in the object (CRD `scale` fields)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str = ".status.selector"


@dataclass(frozen=True)
class ResourceType:
    """One served resource (group, version, plural) and how discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    scale: ScalePaths | None = None
    crd: str = ""  # name of the CRD that serves it; "" for built-ins
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def key(self) -> str:
        """The storage key, shared by all versions of a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        """`v1` or `group/version`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """Lower-case kind, as discovery reports it."""
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        """Whether `status` is written only through the status subresource."""
        return "status" in self.subresources


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, **kw)


_DEPLOY_SCALE = ScalePaths(label_selector=".spec.selector")

BUILTINS: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, short_names=("ns",), subresources=("status",)),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "exec", "attach", "portforward"),
    ),
    _core(
        "services", "Service", short_names=("svc",), categories=("all",), subresources=("status",)
    ),
    _core("endpoints", "Endpoints", short_names=("ep",)),
    _core("events", "Event", short_names=("ev",)),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret"),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _core("nodes", "Node", False, short_names=("no",), subresources=("status",)),
    _core(
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=("status",),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        ("all",),
        ("status", "scale"),
        _DEPLOY_SCALE,
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        True,
        ("rs",),
        ("all",),
        ("status", "scale"),
        _DEPLOY_SCALE,
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        ("pdb",),
        (),
        ("status",),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        (),
        ("status",),
    ),
)


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CRD serves, one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subs = version.get("subresources") or {}
        scale = subs.get("scale")
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                subresources=tuple(s for s in ("status", "scale") if s in subs),
                scale=ScalePaths(
                    scale["specReplicasPath"],
                    scale["statusReplicasPath"],
                    scale.get("labelSelectorPath", ""),
                )
                if scale
                else None,
                crd=crd["metadata"]["name"],
            )
        )
    return out


@dataclass
class Registry:
    """Lookup of served resource types by (group, version, plural) and by group."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> Registry:
        """A registry of the built-in types only."""
        reg = cls()
        for rt in BUILTINS:
            reg._types[(rt.group, rt.version, rt.plural)] = rt
        return reg

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at this path, if any."""
        return self._types.get((group, version, plural))

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types.values())

    def groups(self) -> dict[str, list[str]]:
        """Served versions per group, in registration order (the first is preferred)."""
        out: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            versions = out.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        """The types of one group/version."""
        return [rt for (g, v, _), rt in self._types.items() if g == group and v == version]

    def set_crd(self, crd: dict[str, Any]) -> None:
        """Serve the types of a (new or changed) CRD."""
        self.remove_crd(crd["metadata"]["name"])
        for rt in crd_resource_types(crd):
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_crd(self, name: str) -> None:
        """Stop serving the types of a CRD."""
        for key in [k for k, rt in self._types.items() if rt.crd == name]:
            del self._types[key]
