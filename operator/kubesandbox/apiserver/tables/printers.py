"""The printers of built-in kinds, as kube-apiserver's pkg/printers/internalversion has them.

The server always prints the wide cells; kubectl hides priority > 0 columns without `-o wide`.
Kinds without one get the default convertor's Name + Created At.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubesandbox.apiserver.tables.columns import AGE, META, NAME, Cells, Printer, column
from kubesandbox.apiserver.tables.format import (
    age,
    created,
    field_at,
    format_labels,
    format_selector,
    human_duration,
    name_of,
    or_none,
    parse_time,
)
from kubesandbox.objects import Obj

_CORE, _APPS = "api.core.v1", "api.apps.v1"
_TEMPLATE = [
    ("Containers", "Names of each container in the template.", 1),
    ("Images", "Images referenced by each container in the template.", 1),
    ("Selector", f"{_APPS}.DeploymentSpec.selector", 1),
]


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
        if field_at(state, "waiting", "reason"):
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
    if field_at(pod, "metadata", "deletionTimestamp") and status.get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts


def _last_restart(pod: Obj) -> datetime | None:
    finished = [
        parse_time(field_at(c, "lastState", "terminated", "finishedAt"))
        for c in field_at(pod, "status", "containerStatuses") or []
    ]
    return max((t for t in finished if t is not None), default=None)


def _pod_cells(pod: Obj, now: datetime) -> Cells:
    reason, ready, restarts = _pod_status(pod)
    total = len(field_at(pod, "spec", "containers") or [])
    last = _last_restart(pod)
    restarts_text = str(restarts)
    if restarts and last is not None:
        restarts_text += f" ({human_duration((now - last).total_seconds())} ago)"
    ips = field_at(pod, "status", "podIPs") or [{"ip": field_at(pod, "status", "podIP")}]
    gates = field_at(pod, "spec", "readinessGates") or []
    conditions = {
        c.get("type"): c.get("status") for c in field_at(pod, "status", "conditions") or []
    }
    passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return [
        name_of(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        created(pod, now),
        or_none(ips[0].get("ip")),
        or_none(field_at(pod, "spec", "nodeName")),
        or_none(field_at(pod, "status", "nominatedNodeName")),
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]


def _service_external_ip(spec: Obj, status: Obj) -> str:
    external = spec.get("externalIPs") or []
    kind = spec.get("type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = field_at(status, "loadBalancer", "ingress") or []
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
        name_of(service),
        spec.get("type") or "ClusterIP",
        or_none(cluster_ips[0]),
        _service_external_ip(spec, service.get("status") or {}),
        ",".join(_port_text(p) for p in spec.get("ports") or []),
        created(service, now),
        format_labels(spec.get("selector")),
    ]


def _deployment_cells(deployment: Obj, now: datetime) -> Cells:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    names, images = _containers(field_at(spec, "template", "spec"))
    return [
        name_of(deployment),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        created(deployment, now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _replica_set_cells(replica_set: Obj, now: datetime) -> Cells:
    spec, status = replica_set.get("spec") or {}, replica_set.get("status") or {}
    names, images = _containers(field_at(spec, "template", "spec"))
    return [
        name_of(replica_set),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        created(replica_set, now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _node_address(node: Obj, kind: str) -> str:
    addresses = field_at(node, "status", "addresses") or []
    return next((a["address"] for a in addresses if a.get("type") == kind), "<none>")


def _node_roles(labels: dict[str, str]) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = {k.removeprefix(prefix) for k in labels if k.startswith(prefix) and k != prefix}
    roles |= {v for k, v in labels.items() if k == "kubernetes.io/role" and v}
    return ",".join(sorted(roles)) or "<none>"


def _node_cells(node: Obj, now: datetime) -> Cells:
    ready = next(
        (c for c in field_at(node, "status", "conditions") or [] if c.get("type") == "Ready"), None
    )
    status = [
        "Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"
    ]
    if field_at(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    info = field_at(node, "status", "nodeInfo") or {}
    return [
        name_of(node),
        ",".join(status),
        _node_roles(field_at(node, "metadata", "labels") or {}),
        created(node, now),
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
        name_of(event),
    ]


def _default_cells(obj: Obj, _now: datetime) -> Cells:
    created = parse_time(field_at(obj, "metadata", "creationTimestamp"))
    stamp = (
        (created or datetime(1, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return [name_of(obj), stamp]


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
    ("Name", f"{META}.name", 1, "string", "name"),
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
        lambda ns, now: [name_of(ns), field_at(ns, "status", "phase") or "", created(ns, now)],
    ),
    ("", "configmaps"): (
        [NAME, ("Data", f"{_CORE}.ConfigMap.data"), AGE],
        lambda cm, now: [
            name_of(cm),
            len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            created(cm, now),
        ],
    ),
    ("", "secrets"): (
        [NAME, ("Type", f"{_CORE}.Secret.type"), ("Data", f"{_CORE}.Secret.data"), AGE],
        lambda s, now: [name_of(s), s.get("type", ""), len(s.get("data") or {}), created(s, now)],
    ),
    ("coordination.k8s.io", "leases"): (
        [NAME, ("Holder", "api.coordination.v1.LeaseSpec.holderIdentity"), AGE],
        lambda lease, now: [
            name_of(lease), field_at(lease, "spec", "holderIdentity") or "", created(lease, now)
        ],
    ),
    ("policy", "poddisruptionbudgets"): (
        [
            NAME,
            ("Min Available", "api.policy.v1.PodDisruptionBudgetSpec.minAvailable"),
            ("Max Unavailable", "api.policy.v1.PodDisruptionBudgetSpec.maxUnavailable"),
            ("Allowed Disruptions", "api.policy.v1.PodDisruptionBudgetStatus.disruptionsAllowed"),
            AGE,
        ],
        lambda pdb, now: [
            name_of(pdb),
            _or_na(field_at(pdb, "spec", "minAvailable")),
            _or_na(field_at(pdb, "spec", "maxUnavailable")),
            field_at(pdb, "status", "disruptionsAllowed") or 0,
            created(pdb, now),
        ],
    ),
    ("", "events"): (_EVENT_COLUMNS, _event_cells),
    ("events.k8s.io", "events"): (_EVENT_COLUMNS, _event_cells),
}  # fmt: skip


def _or_na(value: Any) -> Any:
    """kubectl's cell for an unset int-or-string field."""
    return "N/A" if value is None else value


@functools.cache
def builtin_printer(group: str, plural: str) -> Printer:
    """The printer of a built-in resource (the default Name + Created At one when none)."""
    columns, cells = _PRINTERS.get(
        (group, plural),
        ([NAME, ("Created At", f"{META}.creationTimestamp", 0, "date")], _default_cells),
    )
    return Printer([column(*spec) for spec in columns], cells)
