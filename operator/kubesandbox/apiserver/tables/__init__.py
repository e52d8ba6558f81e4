"""Server-side printing: `meta.k8s.io/v1` Tables as kube-apiserver builds them for `kubectl get`.

Built-in kinds follow kubernetes' pkg/printers/internalversion (the server always prints the
wide cells; kubectl hides priority > 0 columns without `-o wide`); custom resources use the
served version's `additionalPrinterColumns` (default: Age); other kinds get the default
convertor's Name + Created At.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubesandbox.apiserver import k8s_schemas
from kubesandbox.objects import Obj

Cells = list[Any]


@dataclass(frozen=True)
class Column:
    """A Table column definition."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> Obj:
        """The column as `columnDefinitions` carries it."""
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Printer:
    """Columns and the function computing one object's cells."""

    columns: list[Column]
    cells: Callable[[Obj, datetime], Cells]


def _column(
    name: str, doc: str, priority: int = 0, type_: str = "string", format_: str = ""
) -> Column:
    """A column; a `doc` naming a schema field (`api.core.v1.PodSpec.nodeName`) is looked up."""
    if doc.startswith(("api.", "apimachinery.")):
        definition, _, field = doc.rpartition(".")
        properties = k8s_schemas.definitions().get(f"io.k8s.{definition}", {}).get("properties", {})
        doc = properties.get(field, {}).get("description", "")
    return Column(name, type_, doc, priority, format_)


_META = "apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE, _APPS = "api.core.v1", "api.apps.v1"
NAME = ("Name", f"{_META}.name", 0, "string", "name")
AGE = ("Age", f"{_META}.creationTimestamp")
_TEMPLATE = [
    ("Containers", "Names of each container in the template.", 1),
    ("Images", "Images referenced by each container in the template.", 1),
    ("Selector", f"{_APPS}.DeploymentSpec.selector", 1),
]


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints ages (`5s`, `3m12s`, `5h`, `2d3h`, `1y20d`)."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes, hours = secs // 60, secs // 3600
    days, years = hours // 24, hours // (24 * 365)
    if minutes < 10:
        return _two_units(minutes, "m", secs % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two_units(years, "y", days % 365, "d")
    return f"{years}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(timestamp: Any, now: datetime) -> str:
    """Time since an RFC 3339 timestamp, `<unknown>` when unset."""
    moment = _parse_time(timestamp)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def _created(obj: Obj, now: datetime) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _or_none(value: Any) -> str:
    return str(value) if value else "<none>"


def format_labels(labels: dict[str, str] | None) -> str:
    """`a=1,b=2` (sorted), `<none>` when empty."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def format_selector(selector: Obj | None) -> str:
    """A LabelSelector as kubectl prints it (`app=web,tier in (a,b)`), `<none>` when empty."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expression in (selector or {}).get("matchExpressions") or []:
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values") or [],
        )
        if operator in ("In", "NotIn"):
            parts.append(f"{key} {operator.lower()} ({','.join(sorted(values))})")
        else:
            parts.append(key if operator == "Exists" else f"!{key}")
    return ",".join(parts) or "<none>"


def _containers(template_spec: Obj | None) -> tuple[str, str]:
    containers = (template_spec or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(
        c.get("image", "") for c in containers
    )


def _pod_status(pod: Obj) -> tuple[str, int, int]:
    """(STATUS reason, ready containers, restarts) as printPod derives them (no init containers)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    ready = restarts = 0
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        terminated = state.get("terminated")
        if _get(state, "waiting", "reason"):
            reason = state["waiting"]["reason"]
        elif terminated is not None:
            signal = terminated.get("signal")
            fallback = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
            reason = terminated.get("reason") or fallback
        elif container.get("ready") and "running" in state:
            running = True
            ready += 1
    if reason == "Completed" and running:
        conditions = status.get("conditions") or []
        is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        reason = "Running" if is_ready else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp") and status.get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts


def _last_restart(pod: Obj) -> datetime | None:
    finished = [
        _parse_time(_get(c, "lastState", "terminated", "finishedAt"))
        for c in _get(pod, "status", "containerStatuses") or []
    ]
    return max((t for t in finished if t is not None), default=None)


def _pod_cells(pod: Obj, now: datetime) -> Cells:
    reason, ready, restarts = _pod_status(pod)
    total = len(_get(pod, "spec", "containers") or [])
    last = _last_restart(pod)
    restarts_text = str(restarts)
    if restarts and last is not None:
        restarts_text += f" ({human_duration((now - last).total_seconds())} ago)"
    ips = _get(pod, "status", "podIPs") or [{"ip": _get(pod, "status", "podIP")}]
    gates = _get(pod, "spec", "readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in _get(pod, "status", "conditions") or []}
    passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _created(pod, now),
        _or_none(ips[0].get("ip")),
        _or_none(_get(pod, "spec", "nodeName")),
        _or_none(_get(pod, "status", "nominatedNodeName")),
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]


def _service_external_ip(spec: Obj, status: Obj) -> str:
    external = spec.get("externalIPs") or []
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = _get(status, "loadBalancer", "ingress") or []
        balancers = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        return ",".join(balancers + external) or "<pending>"
    return str(spec.get("externalName", "")) if kind == "ExternalName" else "<unknown>"


def _port_text(port: Obj) -> str:
    protocol = port.get("protocol") or "TCP"
    if port.get("nodePort"):
        return f"{port.get('port')}:{port['nodePort']}/{protocol}"
    return f"{port.get('port')}/{protocol}"


def _service_cells(service: Obj, now: datetime) -> Cells:
    spec = service.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return [
        _name(service),
        spec.get("type") or "ClusterIP",
        _or_none(cluster_ips[0]),
        _service_external_ip(spec, service.get("status") or {}),
        ",".join(_port_text(p) for p in spec.get("ports") or []),
        _created(service, now),
        format_labels(spec.get("selector")),
    ]


def _deployment_cells(deployment: Obj, now: datetime) -> Cells:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    names, images = _containers(_get(spec, "template", "spec"))
    return [
        _name(deployment),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _created(deployment, now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _replica_set_cells(replica_set: Obj, now: datetime) -> Cells:
    spec, status = replica_set.get("spec") or {}, replica_set.get("status") or {}
    names, images = _containers(_get(spec, "template", "spec"))
    return [
        _name(replica_set),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _created(replica_set, now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _node_address(node: Obj, kind: str) -> str:
    addresses = _get(node, "status", "addresses") or []
    return next((a["address"] for a in addresses if a.get("type") == kind), "<none>")


def _node_roles(labels: dict[str, str]) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = {k.removeprefix(prefix) for k in labels if k.startswith(prefix) and k != prefix}
    roles |= {v for k, v in labels.items() if k == "kubernetes.io/role" and v}
    return ",".join(sorted(roles)) or "<none>"


def _node_cells(node: Obj, now: datetime) -> Cells:
    ready = next(
        (c for c in _get(node, "status", "conditions") or [] if c.get("type") == "Ready"), None
    )
    status = [
        "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"
    ]
    if _get(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    info = _get(node, "status", "nodeInfo") or {}
    return [
        _name(node),
        ",".join(status),
        _node_roles(_get(node, "metadata", "labels") or {}),
        _created(node, now),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _event_cells(event: Obj, now: datetime) -> Cells:
    """core/v1 Events; events.k8s.io/v1 field names are read as fallbacks."""
    first_seen = (
        event.get("firstTimestamp")
        or event.get("deprecatedFirstTimestamp")
        or event.get("eventTime")
    )
    last_seen = event.get("lastTimestamp") or event.get("deprecatedLastTimestamp") or first_seen
    count = event.get("count") or event.get("deprecatedCount") or 1
    if event.get("series"):
        last_seen, count = (
            event["series"].get("lastObservedTime"),
            event["series"].get("count", count),
        )
    involved = event.get("involvedObject") or event.get("regarding") or {}
    kind = str(involved.get("kind", "")).lower()
    source = event.get("source") or event.get("deprecatedSource") or {}
    component = source.get("component") or event.get("reportingController") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return [
        age(last_seen, now),
        event.get("type", ""),
        event.get("reason", ""),
        f"{kind}/{involved['name']}" if involved.get("name") else kind,
        involved.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        str(event.get("message") or event.get("note") or "").strip(),
        age(first_seen, now),
        count,
        _name(event),
    ]


def _default_cells(obj: Obj, _now: datetime) -> Cells:
    created = _parse_time(_get(obj, "metadata", "creationTimestamp"))
    stamp = (
        (created or datetime(1, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return [_name(obj), stamp]


_EVENT_COLUMNS = [
    ("Last Seen", f"{_CORE}.Event.lastTimestamp"),
    ("Type", f"{_CORE}.Event.type"),
    ("Reason", f"{_CORE}.Event.reason"),
    ("Object", f"{_CORE}.Event.involvedObject"),
    ("Subobject", f"{_CORE}.ObjectReference.fieldPath", 1),
    ("Source", f"{_CORE}.Event.source", 1),
    ("Message", f"{_CORE}.Event.message"),
    ("First Seen", f"{_CORE}.Event.firstTimestamp", 1),
    ("Count", f"{_CORE}.Event.count", 1),
    ("Name", f"{_META}.name", 1, "string", "name"),
]
_PRINTERS: dict[tuple[str, str], tuple[list[tuple[Any, ...]], Callable[[Obj, datetime], Cells]]] = {
    ("", "pods"): (
        [
            NAME,
            ("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            ("Status", "The aggregate status of the containers in this pod."),
            ("Restarts", "The number of times the containers in this pod have been restarted "
                         "and when the last container in this pod has restarted."),
            AGE,
            ("IP", f"{_CORE}.PodStatus.podIP", 1),
            ("Node", f"{_CORE}.PodSpec.nodeName", 1),
            ("Nominated Node", f"{_CORE}.PodStatus.nominatedNodeName", 1),
            ("Readiness Gates", f"{_CORE}.PodSpec.readinessGates", 1),
        ],
        _pod_cells,
    ),
    ("", "services"): (
        [
            NAME,
            ("Type", f"{_CORE}.ServiceSpec.type"),
            ("Cluster-IP", f"{_CORE}.ServiceSpec.clusterIP"),
            ("External-IP", f"{_CORE}.ServiceSpec.externalIPs"),
            ("Port(s)", f"{_CORE}.ServiceSpec.ports"),
            AGE,
            ("Selector", f"{_CORE}.ServiceSpec.selector", 1),
        ],
        _service_cells,
    ),
    ("apps", "deployments"): (
        [
            NAME,
            ("Ready", "Number of the pod with ready state"),
            ("Up-to-date", f"{_APPS}.DeploymentStatus.updatedReplicas"),
            ("Available", f"{_APPS}.DeploymentStatus.availableReplicas"),
            AGE,
            *_TEMPLATE,
        ],
        _deployment_cells,
    ),
    ("apps", "replicasets"): (
        [
            NAME,
            ("Desired", f"{_APPS}.ReplicaSetSpec.replicas", 0, "integer"),
            ("Current", f"{_APPS}.ReplicaSetStatus.replicas", 0, "integer"),
            ("Ready", f"{_APPS}.ReplicaSetStatus.readyReplicas", 0, "integer"),
            AGE,
            *_TEMPLATE,
        ],
        _replica_set_cells,
    ),
    ("", "nodes"): (
        [
            NAME,
            ("Status", "The status of the node"),
            ("Roles", "The roles of the node"),
            AGE,
            ("Version", f"{_CORE}.NodeSystemInfo.kubeletVersion"),
            ("Internal-IP", f"{_CORE}.NodeStatus.addresses", 1),
            ("External-IP", f"{_CORE}.NodeStatus.addresses", 1),
            ("OS-Image", f"{_CORE}.NodeSystemInfo.osImage", 1),
            ("Kernel-Version", f"{_CORE}.NodeSystemInfo.kernelVersion", 1),
            ("Container-Runtime", f"{_CORE}.NodeSystemInfo.containerRuntimeVersion", 1),
        ],
        _node_cells,
    ),
    ("", "namespaces"): (
        [NAME, ("Status", "The status of the namespace"), AGE],
        lambda ns, now: [_name(ns), _get(ns, "status", "phase") or "", _created(ns, now)],
    ),
    ("", "configmaps"): (
        [NAME, ("Data", f"{_CORE}.ConfigMap.data"), AGE],
        lambda cm, now: [
            _name(cm),
            len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            _created(cm, now),
        ],
    ),
    ("", "secrets"): (
        [NAME, ("Type", f"{_CORE}.Secret.type"), ("Data", f"{_CORE}.Secret.data"), AGE],
        lambda s, now: [_name(s), s.get("type", ""), len(s.get("data") or {}), _created(s, now)],
    ),
    ("coordination.k8s.io", "leases"): (
        [NAME, ("Holder", "api.coordination.v1.LeaseSpec.holderIdentity"), AGE],
        lambda lease, now: [
            _name(lease), _get(lease, "spec", "holderIdentity") or "", _created(lease, now)
        ],
    ),
    ("", "events"): (_EVENT_COLUMNS, _event_cells),
    ("events.k8s.io", "events"): (_EVENT_COLUMNS, _event_cells),
}  # fmt: skip


@functools.cache
def builtin_printer(group: str, plural: str) -> Printer:
    """The printer of a built-in resource (the default Name + Created At one when none)."""
    columns, cells = _PRINTERS.get(
        (group, plural),
        ([NAME, ("Created At", f"{_META}.creationTimestamp", 0, "date")], _default_cells),
    )
    return Printer([_column(*spec) for spec in columns], cells)


def _json_path(obj: Any, path: str) -> Any:
    """Evaluate a simple JSONPath (`.status.phase`, `.spec.items[0].name`); None when missing."""
    for step in path.strip().strip("{}").lstrip("$").split(".")[1:]:
        name, _, index = step.partition("[")
        if name:
            obj = obj.get(name) if isinstance(obj, dict) else None
        if index:
            position = int(index.rstrip("]")) if index.rstrip("]").lstrip("-").isdigit() else None
            fits = (
                isinstance(obj, list) and position is not None and -len(obj) <= position < len(obj)
            )
            obj = obj[position] if fits else None
    return obj


def _cell(type_: str, value: Any, now: datetime) -> Any:
    """A printer column value as the apiextensions table convertor types it."""
    if value is None:
        return None
    if type_ == "string":
        return (
            value
            if isinstance(value, str)
            else json.dumps(value, separators=(",", ":"), sort_keys=True)
        )
    if type_ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if type_ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if type_ == "date" and isinstance(value, str):
        return "<invalid>" if _parse_time(value) is None else age(value, now)
    return None


def crd_printer(crd: Obj, version: str | None = None) -> Printer:
    """The printer of a CRD's served version (`version`, else the storage version)."""
    versions = _get(crd, "spec", "versions") or []
    served = next(
        (v for v in versions if v.get("name") == version or (version is None and v.get("storage"))),
        versions[0] if versions else {},
    )
    specs = served.get("additionalPrinterColumns") or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
         "description": _column(*AGE).description},
    ]  # fmt: skip
    columns = [
        Column(
            c["name"],
            c.get("type", "string"),
            c.get("description")
            or f"Custom resource definition column (in JSONPath format): {c['jsonPath']}",
            c.get("priority", 0),
            c.get("format", ""),
        )
        for c in specs
    ]

    def cells(obj: Obj, now: datetime) -> Cells:
        values = [
            _cell(col.type, _json_path(obj, c["jsonPath"]), now)
            for col, c in zip(columns, specs, strict=True)
        ]
        return [_name(obj), *values]

    return Printer([_column(*NAME), *columns], cells)


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


_POD_ROW_CONDITIONS = {
    "Succeeded": [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}],
    "Failed": [{"type": "Completed", "status": "True", "reason": "Failed",
                "message": "The pod failed."}],
}  # fmt: skip


def to_table(
    group: str,
    plural: str,
    objects: list[Obj],
    crd: Obj | None,
    include_object: str = "Metadata",
    *,
    version: str | None = None,
    resource_version: str = "",
    now: datetime | None = None,
) -> Obj:
    """A `meta.k8s.io/v1` Table; rows carry PartialObjectMetadata, the object or nothing."""
    printer = crd_printer(crd, version) if crd else builtin_printer(group, plural)
    moment = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: Obj = {"cells": printer.cells(obj, moment)}
        if (
            plural == "pods"
            and not group
            and (found := _POD_ROW_CONDITIONS.get(_get(obj, "status", "phase")))
        ):
            row["conditions"] = found
        if (shown := _row_object(obj, include_object)) is not None:
            row["object"] = shown
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [c.definition() for c in printer.columns],
        "rows": rows,
    }
