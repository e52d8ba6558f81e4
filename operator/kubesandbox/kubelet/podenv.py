"""A container's environment and command line as a kubelet builds them (pure).

Environment: envFrom, then env in order, each value with `$(VAR)` expanded from what came
before; command and args expanded from the full environment. Then the sandbox's own
rewriting: volume mountPaths become the host directories that stand in for them, and dotted
cluster DNS names become addresses.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kubesandbox.kubelet.scheduler import container_requests, quantity
from kubesandbox.objects import Obj

_VAR = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")

Lookup = Callable[[str, str], Obj | None]  # (plural "configmaps"/"secrets", name) -> object


class ConfigError(Exception):
    """A container cannot be configured: it fails to start (StartError)."""


class MissingReference(ConfigError):
    """A configMap, secret or key the container's env refers to does not exist (yet): the
    kubelet reports CreateContainerConfigError and tries again."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: unknown references stay, `$$` is a literal `$`."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(sub, text)


def field_value(pod: Obj, path: str) -> str:
    """The value of a downward-API fieldRef (`metadata.name`, `status.podIP`, ...)."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status") or {}
    keyed = _FIELD_KEY.match(path)
    if keyed:
        return str((meta.get(keyed.group(1)) or {}).get(keyed.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((meta.get(path.split(".")[1]) or {}).items())
        return "".join(f'{k}="{v}"\n' for k, v in items)
    values = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or ()),
        "status.hostIP": status.get("hostIP"),
        "status.hostIPs": ",".join(ip["ip"] for ip in status.get("hostIPs") or ()),
    }
    if path not in values:
        raise ConfigError(f"unsupported fieldRef fieldPath: {path}")
    return str(values[path] or "")


def resource_value(container: Obj, ref: Obj, allocatable: Mapping[str, str]) -> str:
    """A resourceFieldRef (`limits.cpu`, `requests.memory`...): rounded up by its divisor; a
    missing limit is the node's allocatable."""
    kind, _, name = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    values = container_requests(container) if kind == "requests" else resources.get("limits")
    raw = (values or {}).get(name, allocatable.get(name, 0) if kind == "limits" else 0)
    divisor = quantity(ref.get("divisor") or 1)
    return str(math.ceil(quantity(raw) / divisor))


def _key_ref(ref: Obj, plural: str, lookup: Lookup) -> str | None:
    obj = lookup(plural, ref["name"])
    data = (obj or {}).get("data") or {}
    if ref["key"] in data:
        value = data[ref["key"]]
        return base64.b64decode(value).decode() if plural == "secrets" else str(value)
    if ref.get("optional"):
        return None
    kind = "configmap" if plural == "configmaps" else "secret"
    if obj is None:
        raise MissingReference(f'{kind} "{ref["name"]}" not found')
    raise MissingReference(f"couldn't find key {ref['key']} in {kind.capitalize()} {ref['name']}")


def _from_source(source: Obj, lookup: Lookup) -> dict[str, str]:
    """The variables one envFrom entry brings."""
    plural, ref = (
        ("configmaps", source["configMapRef"])
        if "configMapRef" in source
        else ("secrets", source["secretRef"])
    )
    obj = lookup(plural, ref["name"])
    if obj is None:
        if ref.get("optional"):
            return {}
        kind = "configmap" if plural == "configmaps" else "secret"
        raise MissingReference(f'{kind} "{ref["name"]}" not found')
    data = obj.get("data") or {}
    prefix = source.get("prefix", "")
    if plural == "secrets":
        return {prefix + k: base64.b64decode(v).decode() for k, v in data.items()}
    return {prefix + k: str(v) for k, v in data.items()}


def container_env(
    pod: Obj, container: Obj, allocatable: Mapping[str, str], lookup: Lookup
) -> dict[str, str]:
    """The variables a container declares (envFrom, env), expanded as the kubelet does."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        env.update(_from_source(source, lookup))
    for var in container.get("env") or ():
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = expand(var.get("value", ""), env)
            continue
        if "fieldRef" in source:
            value: str | None = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"], allocatable)
        elif "configMapKeyRef" in source:
            value = _key_ref(source["configMapKeyRef"], "configmaps", lookup)
        else:
            value = _key_ref(source["secretKeyRef"], "secrets", lookup)
        if value is not None:
            env[var["name"]] = value
    return env


def command_line(container: Obj, env: Mapping[str, str]) -> list[str]:
    """command + args, expanded. Without `command`, `args` is the command line, as in an
    image without an entrypoint (busybox, alpine): the sandbox pulls no image, so it knows
    no entrypoint; an error when both are missing."""
    argv = [*(container.get("command") or ()), *(container.get("args") or ())]
    if not argv:
        raise ConfigError(
            f"container {container['name']!r} has neither command nor args: the sandbox runs "
            f"containers as host processes and does not know the entrypoint of image "
            f"{container.get('image', '')!r}; set `command` (or `args`)"
        )
    return [expand(part, env) for part in argv]


@dataclass(frozen=True)
class MountMap:
    """mountPath (without a trailing slash) -> host directory, applied to strings."""

    paths: Mapping[str, str]

    def rewrite(self, text: str) -> str:
        """`text` with each mountPath (at a path boundary) replaced by its directory."""
        if not self.paths:
            return text
        ordered = sorted(self.paths, key=len, reverse=True)
        alternatives = "|".join(re.escape(p) for p in ordered)
        pattern = re.compile(rf"(?<![\w.\-/])({alternatives})(?=/|$|[^\w.\-])")
        return pattern.sub(lambda m: self.paths[m.group(1)], text)


def rewritten(
    argv: list[str], env: Mapping[str, str], mounts: MountMap, names: Callable[[str], str]
) -> tuple[list[str], dict[str, str]]:
    """argv and env with mount paths and cluster names rewritten."""

    def both(text: str) -> str:
        return names(mounts.rewrite(text))

    return [both(a) for a in argv], {k: both(v) for k, v in env.items()}
