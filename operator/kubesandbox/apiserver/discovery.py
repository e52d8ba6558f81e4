"""Discovery documents: /api, /apis, group/version resource lists and aggregated discovery."""

from __future__ import annotations

from typing import Any

from kubesandbox.apiserver.registry import Registry, ResourceType

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_SUB_VERBS = ("get", "patch", "update")

Doc = dict[str, Any]


def wants_aggregated(accept: str) -> bool:
    """Whether the Accept header asks for apidiscovery.k8s.io/v2 aggregated discovery."""
    return any(
        "as=APIGroupDiscoveryList" in part and "v=v2;" in part.replace(" ", "") + ";"
        for part in accept.split(",")
    )


_CONNECT_KINDS = {
    "exec": "PodExecOptions",
    "attach": "PodAttachOptions",
    "portforward": "PodPortForwardOptions",
}
"""The connect subresources of pods and the options kind kube lists them with."""


def _subresources(rt: ResourceType) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """(name, group, version, kind, verbs) of each subresource."""
    out: list[tuple[str, str, str, str, tuple[str, ...]]] = []
    for sub in rt.subresources:
        if sub == "scale":
            out.append((sub, "autoscaling", "v1", "Scale", _SUB_VERBS))
        elif sub == "log":
            out.append((sub, "", "v1", rt.kind, ("get",)))
        elif sub in _CONNECT_KINDS:
            out.append((sub, "", "v1", _CONNECT_KINDS[sub], ("create", "get")))
        else:
            out.append((sub, rt.group, rt.version, rt.kind, _SUB_VERBS))
    return out


def resource_list(registry: Registry, group: str, version: str) -> Doc | None:
    """The APIResourceList of one group/version, or None when not served."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[Doc] = []
    for rt in types:
        entry: Doc = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub, g, v, kind, verbs in _subresources(rt):
            item: Doc = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if (g, v) != (rt.group, rt.version):
                item |= {"group": g, "version": v}
            resources.append(item)
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def api_versions(address: str) -> Doc:
    """The /api document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_group(group: str, versions: list[str]) -> Doc:
    """One APIGroup (the first version is preferred)."""
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": listed,
        "preferredVersion": listed[0],
    }


def api_group_list(registry: Registry) -> Doc:
    """The /apis document."""
    groups = [api_group(g, vs) for g, vs in registry.groups().items() if g]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _aggregated_resource(rt: ResourceType) -> Doc:
    entry: Doc = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = [
        {
            "subresource": sub,
            "responseKind": {"group": g, "version": v, "kind": kind},
            "verbs": list(verbs),
        }
        for sub, g, v, kind, verbs in _subresources(rt)
    ]
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, core: bool) -> Doc:
    """APIGroupDiscoveryList of the core group (/api) or of all named groups (/apis)."""
    items = []
    for group, versions in registry.groups().items():
        if bool(group) == core:
            continue
        items.append(
            {
                "metadata": {"name": group} if group else {},
                "versions": [
                    {
                        "version": v,
                        "resources": [
                            _aggregated_resource(rt) for rt in registry.in_group_version(group, v)
                        ],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
