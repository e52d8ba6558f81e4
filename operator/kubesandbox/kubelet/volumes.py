"""Pod volumes as host directories.

- emptyDir: `STATE/pods/<uid>/volumes/<name>`; `medium: Memory` under
  `/dev/shm/kubesandbox-<uid>/<name>`. Removed with the pod.
- configMap, secret, downwardAPI, projected (of those): files written into the same kind of
  per-pod directory when the pod starts.
- persistentVolumeClaim: `STATE/volumes/<namespace>/<claim>`, kept after the pod.
- hostPath: the host path itself.
A container's volumeMounts become a `MountMap` (mountPath -> directory, plus subPath).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Mapping
from pathlib import Path

from kubesandbox.kubelet.podenv import ConfigError, Lookup, MountMap, field_value, resource_value
from kubesandbox.objects import Obj

SHM = Path("/dev/shm")
_KINDS = {
    "emptyDir",
    "persistentVolumeClaim",
    "hostPath",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
}


def pod_dir(state_dir: Path, pod: Obj) -> Path:
    """The per-pod directory of the kubelet."""
    uid: str = pod["metadata"]["uid"]
    return state_dir / "pods" / uid


def _memory_dir(pod: Obj) -> Path:
    return SHM / f"kubesandbox-{pod['metadata']['uid']}"


def volume_path(state_dir: Path, pod: Obj, volume: Obj) -> Path:
    """The host directory that stands in for a volume."""
    name = volume["name"]
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]["claimName"]
        return state_dir / "volumes" / str(pod["metadata"]["namespace"]) / str(claim)
    if "hostPath" in volume:
        return Path(volume["hostPath"]["path"])
    if (volume.get("emptyDir") or {}).get("medium") == "Memory":
        return _memory_dir(pod) / str(name)
    return pod_dir(state_dir, pod) / "volumes" / str(name)


def _write(directory: Path, files: Mapping[str, bytes], mode: int) -> None:
    for relative, data in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


def _keyed_files(source: Obj, plural: str, lookup: Lookup) -> dict[str, bytes]:
    """The files of a configMap or secret volume source (all keys, or its items)."""
    name = source.get("name") or source.get("secretName", "")
    obj = lookup(plural, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise ConfigError(
            f'{"configmap" if plural == "configmaps" else "secret"} "{name}" not found'
        )
    data: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        data[key] = base64.b64decode(value) if plural == "secrets" else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    items = source.get("items")
    if not items:
        return data
    missing = [i["key"] for i in items if i["key"] not in data and not source.get("optional")]
    if missing:
        raise ConfigError(f"configmap/secret {name} has no key {missing[0]}")
    return {i["path"]: data[i["key"]] for i in items if i["key"] in data}


def _downward_files(pod: Obj, source: Obj, allocatable: Mapping[str, str]) -> dict[str, bytes]:
    files = {}
    containers = {c["name"]: c for c in pod.get("spec", {}).get("containers", ())}
    for item in source.get("items") or ():
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName", ""), {"name": ""})
            value = resource_value(container, ref, allocatable)
        files[item["path"]] = value.encode()
    return files


def _source_files(
    pod: Obj, volume: Obj, allocatable: Mapping[str, str], lookup: Lookup
) -> dict[str, bytes] | None:
    """The files a projected-style source provides; None for directory-only kinds."""
    if "configMap" in volume:
        return _keyed_files(volume["configMap"], "configmaps", lookup)
    if "secret" in volume:
        return _keyed_files(volume["secret"], "secrets", lookup)
    if "downwardAPI" in volume:
        return _downward_files(pod, volume["downwardAPI"], allocatable)
    if "projected" in volume:
        files: dict[str, bytes] = {}
        for source in volume["projected"].get("sources") or ():
            files.update(_source_files(pod, source, allocatable, lookup) or {})
        return files
    return None


def _mode(volume: Obj) -> int:
    for kind in ("configMap", "secret", "downwardAPI", "projected"):
        if kind in volume:
            return int(volume[kind].get("defaultMode", 0o644))
    return 0o644


def prepare(
    state_dir: Path, pod: Obj, allocatable: Mapping[str, str], lookup: Lookup
) -> dict[str, Path]:
    """Create (and fill) every volume of a pod; volume name -> directory."""
    dirs = {}
    for volume in pod.get("spec", {}).get("volumes") or ():
        path = volume_path(state_dir, pod, volume)
        if not _KINDS & volume.keys():
            raise ConfigError(f"volume {volume['name']!r}: kind not supported by the sandbox")
        files = _source_files(pod, volume, allocatable, lookup)
        path.mkdir(parents=True, exist_ok=True)
        if files is not None:
            _write(path, files, _mode(volume))
        dirs[volume["name"]] = path
    return dirs


def mount_map(container: Obj, dirs: Mapping[str, Path]) -> MountMap:
    """A container's volumeMounts: mountPath -> its volume's directory (plus subPath)."""
    paths = {}
    for mount in container.get("volumeMounts") or ():
        if mount["name"] not in dirs:
            raise ConfigError(f"volumeMount {mount['mountPath']}: no volume named {mount['name']}")
        directory = dirs[mount["name"]]
        if mount.get("subPath"):
            directory = directory / mount["subPath"]
            directory.mkdir(parents=True, exist_ok=True)
        paths[mount["mountPath"].rstrip("/") or "/"] = str(directory)
    return MountMap(paths)


def cleanup(state_dir: Path, pod: Obj) -> None:
    """Remove a pod's own directories (claims and host paths stay)."""
    shutil.rmtree(pod_dir(state_dir, pod), ignore_errors=True)
    shutil.rmtree(_memory_dir(pod), ignore_errors=True)
