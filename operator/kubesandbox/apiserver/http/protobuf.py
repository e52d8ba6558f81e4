"""Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects (pure).

Typed clients of kubectl and helm (`kubectl create configmap`, helm's release secrets) send
built-in objects as protobuf and have no JSON fallback. The sandbox decodes the kinds those
clients create from a table of their field numbers (k8s.io/api `generated.proto`). A field
the table does not know is skipped when it holds its zero value (gogo-protobuf writes every
non-pointer field) and refused otherwise, so a body is never silently truncated.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from kubesandbox.objects import Obj

MAGIC = b"k8s\x00"

# A field: (JSON name, type). Types: s string, b bytes (base64), i integer, t bool, T time,
# I int-or-string, F FieldsV1, m map<string,string>, B map<string,bytes>, @Msg a message;
# a leading * marks a repeated field, a trailing ! keeps the zero value (pointer fields).
Field = tuple[str, str]
_OBJ_META: dict[int, Field] = {
    1: ("name", "s"),
    2: ("generateName", "s"),
    3: ("namespace", "s"),
    4: ("selfLink", "s"),
    5: ("uid", "s"),
    6: ("resourceVersion", "s"),
    7: ("generation", "i"),
    8: ("creationTimestamp", "T"),
    9: ("deletionTimestamp", "T"),
    10: ("deletionGracePeriodSeconds", "i!"),
    11: ("labels", "m"),
    12: ("annotations", "m"),
    13: ("ownerReferences", "*@OwnerReference"),
    14: ("finalizers", "*s"),
    17: ("managedFields", "*@ManagedFieldsEntry"),
}
_LABEL_SELECTOR: dict[int, Field] = {
    1: ("matchLabels", "m"),
    2: ("matchExpressions", "*@LabelSelectorRequirement"),
}
MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "@TypeMeta"), 2: ("raw", "b"), 3: ("contentEncoding", "s")},
    "TypeMeta": {1: ("apiVersion", "s"), 2: ("kind", "s")},
    "ObjectMeta": _OBJ_META,
    "OwnerReference": {
        1: ("kind", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("controller", "t!"),
        7: ("blockOwnerDeletion", "t!"),
    },
    "ManagedFieldsEntry": {
        1: ("manager", "s"),
        2: ("operation", "s"),
        3: ("apiVersion", "s"),
        4: ("time", "T"),
        6: ("fieldsType", "s"),
        7: ("fieldsV1", "F"),
        8: ("subresource", "s"),
    },
    "LabelSelector": _LABEL_SELECTOR,
    "LabelSelectorRequirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "*s")},
    "ObjectReference": {
        1: ("kind", "s"),
        2: ("namespace", "s"),
        3: ("name", "s"),
        4: ("uid", "s"),
        5: ("apiVersion", "s"),
        6: ("resourceVersion", "s"),
        7: ("fieldPath", "s"),
    },
    "LocalObjectReference": {1: ("name", "s")},
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "i!"),
        2: ("preconditions", "@Preconditions"),
        3: ("orphanDependents", "t!"),
        4: ("propagationPolicy", "s"),
        5: ("dryRun", "*s"),
    },
    "Preconditions": {1: ("uid", "s"), 2: ("resourceVersion", "s")},
    # core/v1
    "ConfigMap": {
        1: ("metadata", "@ObjectMeta"),
        2: ("data", "m"),
        3: ("binaryData", "B"),
        4: ("immutable", "t!"),
    },
    "Secret": {
        1: ("metadata", "@ObjectMeta"),
        2: ("data", "B"),
        3: ("type", "s"),
        4: ("stringData", "m"),
        5: ("immutable", "t!"),
    },
    "Namespace": {
        1: ("metadata", "@ObjectMeta"),
        2: ("spec", "@NamespaceSpec"),
        3: ("status", "@NamespaceStatus"),
    },
    "NamespaceSpec": {1: ("finalizers", "*s")},
    "NamespaceStatus": {1: ("phase", "s")},
    "ServiceAccount": {
        1: ("metadata", "@ObjectMeta"),
        2: ("secrets", "*@ObjectReference"),
        3: ("imagePullSecrets", "*@LocalObjectReference"),
        4: ("automountServiceAccountToken", "t!"),
    },
    "Service": {
        1: ("metadata", "@ObjectMeta"),
        2: ("spec", "@ServiceSpec"),
        3: ("status", "@Ignored"),
    },
    "ServiceSpec": {
        1: ("ports", "*@ServicePort"),
        2: ("selector", "m"),
        3: ("clusterIP", "s"),
        4: ("type", "s"),
        5: ("externalIPs", "*s"),
        7: ("sessionAffinity", "s"),
        10: ("externalName", "s"),
        18: ("clusterIPs", "*s"),
    },
    "ServicePort": {
        1: ("name", "s"),
        2: ("protocol", "s"),
        3: ("port", "i"),
        4: ("targetPort", "I"),
        5: ("nodePort", "i"),
        6: ("appProtocol", "s"),
    },
    "IntOrString": {1: ("type", "i"), 2: ("intVal", "i"), 3: ("strVal", "s")},
    "PodTemplateSpec": {1: ("metadata", "@ObjectMeta"), 2: ("spec", "@PodSpec")},
    "PodSpec": {
        2: ("containers", "*@Container"),
        3: ("restartPolicy", "s"),
        7: ("nodeSelector", "m"),
        8: ("serviceAccountName", "s"),
        20: ("initContainers", "*@Container"),
    },
    "Container": {
        1: ("name", "s"),
        2: ("image", "s"),
        3: ("command", "*s"),
        4: ("args", "*s"),
        5: ("workingDir", "s"),
        6: ("ports", "*@ContainerPort"),
        7: ("env", "*@EnvVar"),
        14: ("imagePullPolicy", "s"),
    },
    "ContainerPort": {
        1: ("name", "s"),
        2: ("hostPort", "i"),
        3: ("containerPort", "i"),
        4: ("protocol", "s"),
        5: ("hostIP", "s"),
    },
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    # apps/v1
    "Deployment": {
        1: ("metadata", "@ObjectMeta"),
        2: ("spec", "@DeploymentSpec"),
        3: ("status", "@Ignored"),
    },
    "DeploymentSpec": {
        1: ("replicas", "i!"),
        2: ("selector", "@LabelSelector"),
        3: ("template", "@PodTemplateSpec"),
        4: ("strategy", "@DeploymentStrategy"),
        5: ("minReadySeconds", "i"),
        6: ("revisionHistoryLimit", "i!"),
        7: ("paused", "t"),
        9: ("progressDeadlineSeconds", "i!"),
    },
    "DeploymentStrategy": {1: ("type", "s"), 2: ("rollingUpdate", "@RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "I"), 2: ("maxSurge", "I")},
    # rbac.authorization.k8s.io/v1
    "PolicyRule": {
        1: ("verbs", "*s"),
        2: ("apiGroups", "*s"),
        3: ("resources", "*s"),
        4: ("resourceNames", "*s"),
        5: ("nonResourceURLs", "*s"),
    },
    "Role": {1: ("metadata", "@ObjectMeta"), 2: ("rules", "*@PolicyRule")},
    "ClusterRole": {1: ("metadata", "@ObjectMeta"), 2: ("rules", "*@PolicyRule")},
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
    "RoleBinding": {
        1: ("metadata", "@ObjectMeta"),
        2: ("subjects", "*@Subject"),
        3: ("roleRef", "@RoleRef"),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "@ObjectMeta"),
        2: ("subjects", "*@Subject"),
        3: ("roleRef", "@RoleRef"),
    },
}
# Status of kinds whose status a create or update through the main resource ignores.
_IGNORED = "Ignored"


class ProtobufUnsupported(ValueError):
    """A protobuf body of a kind, or with a field, that the table does not cover."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ProtobufUnsupported("truncated protobuf varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, varint or length-delimited bytes) in wire order."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _varint(data, i)
            out.append((number, data[i : i + size]))
            i += size
        elif wire == 1:
            out.append((number, int.from_bytes(data[i : i + 8], "little")))
            i += 8
        elif wire == 5:
            out.append((number, int.from_bytes(data[i : i + 4], "little")))
            i += 4
        else:
            raise ProtobufUnsupported(f"unsupported protobuf wire type {wire}")
    return out


def _signed(value: int) -> int:
    """A varint read as the two's-complement int64 gogo-protobuf writes."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, raw: int | bytes, message: str) -> Any:
    if kind in ("i", "t"):
        if not isinstance(raw, int):
            raise ProtobufUnsupported(f"{message}: expected a varint for a {kind} field")
        return _signed(raw) if kind == "i" else bool(raw)
    if not isinstance(raw, bytes):
        raise ProtobufUnsupported(f"{message}: expected bytes for a {kind} field")
    if kind == "s":
        return raw.decode()
    if kind == "b":
        return base64.b64encode(raw).decode()
    if kind == "F":
        field = dict(_fields(raw)).get(1, b"")
        return json.loads(field) if isinstance(field, bytes) and field else {}
    if kind == "T":
        seconds = dict(_fields(raw)).get(1, 0)
        if not isinstance(seconds, int) or not seconds:
            return None
        return datetime.fromtimestamp(_signed(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "I":
        value = decode_message("IntOrString", raw)
        return value.get("strVal", "") if value.get("type") == 1 else value.get("intVal", 0)
    return decode_message(kind[1:], raw)


def _empty(value: Any) -> bool:
    return value in (None, "", 0, False, {}, [])


def decode_message(message: str, data: bytes) -> Obj:
    """One protobuf message of the table as its JSON object (zero values omitted)."""
    if message == _IGNORED:
        return {}
    table = MESSAGES.get(message)
    if table is None:
        raise ProtobufUnsupported(f"no protobuf table for {message}")
    out: Obj = {}
    for number, raw in _fields(data):
        spec = table.get(number)
        if spec is None:
            if raw in (0, b""):
                continue
            raise ProtobufUnsupported(f"field {number} of {message} is not supported")
        name, kind = spec
        keep_zero = kind.endswith("!")
        kind = kind.rstrip("!")
        if kind in ("m", "B"):
            assert isinstance(raw, bytes)
            entry = dict(_fields(raw))
            key, value = entry.get(1, b""), entry.get(2, b"")
            assert isinstance(key, bytes) and isinstance(value, bytes)
            shown = value.decode() if kind == "m" else base64.b64encode(value).decode()
            out.setdefault(name, {})[key.decode()] = shown
        elif kind.startswith("*"):
            out.setdefault(name, []).append(_scalar(kind[1:], raw, message))
        else:
            value = _scalar(kind, raw, message)
            if keep_zero or not _empty(value):
                out[name] = value
            else:
                out.pop(name, None)
    return out


def decode(data: bytes) -> Obj:
    """A `k8s\\0`-framed runtime.Unknown body as the JSON object it carries."""
    if not data.startswith(MAGIC):
        raise ProtobufUnsupported("protobuf body without the k8s envelope")
    envelope = decode_message("Unknown", data[len(MAGIC) :])
    type_meta = envelope.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if envelope.get("contentEncoding"):
        raise ProtobufUnsupported(f"content encoding {envelope['contentEncoding']}")
    if kind not in MESSAGES or kind in ("Unknown", "TypeMeta"):
        raise ProtobufUnsupported(f"protobuf bodies of kind {kind or '(none)'} are not supported")
    raw = base64.b64decode(envelope.get("raw", ""))
    obj = decode_message(kind, raw)
    if kind == "DeleteOptions":
        return obj
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
