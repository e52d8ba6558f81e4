"""Defaults kube-apiserver fills into built-in objects on create (the ones clients rely on)."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable

from kubesandbox.network.addresses import AddressLeases
from kubesandbox.objects import Obj, now

_cluster_ips = itertools.count(10)
_cluster_ip_leases = AddressLeases()
"""Service addresses are leased host-wide like pod addresses: two sandboxes on one host never
give two services one address (the second proxy could not listen, its clients would reach the
first sandbox's service)."""


def _next_cluster_ip() -> str:
    """The next free 127.96.x.y address, on the host loopback."""
    for n in _cluster_ips:
        address = f"127.96.{n // 250}.{n % 250 + 1}"
        if _cluster_ip_leases.claim(address, busy=set()):
            return address
    raise AssertionError("unreachable: the counter is endless")


def _pod(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    for c in [*spec.get("containers", ()), *spec.get("initContainers", ())]:
        tag = c.get("image", "").rpartition(":")[2]
        c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        for port in c.get("ports", ()):
            port.setdefault("protocol", "TCP")
    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def _service(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if "clusterIP" not in spec:
        spec["clusterIP"] = _next_cluster_ip()
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    for port in spec.get("ports", ()):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _secret(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    data = obj.setdefault("data", {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(obj: Obj) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}


def _workload(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    if obj["kind"] == "Deployment":
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
    obj["status"] = {}


JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"


def _job(obj: Obj) -> None:
    """kube's Job defaults, and the selector it generates: the template carries the job's
    uid and name as labels (new and legacy keys), the selector its uid."""
    spec, meta = obj.setdefault("spec", {}), obj["metadata"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    if not spec.get("manualSelector"):
        uid, name = meta["uid"], meta["name"]
        labels = {JOB_UID_LABEL: uid, "batch.kubernetes.io/job-name": name}
        labels |= {"controller-uid": uid, "job-name": name}
        template_meta["labels"] = {**(template_meta.get("labels") or {}), **labels}
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
    if not meta.get("labels") and template_meta.get("labels"):
        meta["labels"] = dict(template_meta["labels"])
    obj["status"] = {}


def _daemon_set(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault(
        "updateStrategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
    )
    obj["status"] = {
        "currentNumberScheduled": 0,
        "desiredNumberScheduled": 0,
        "numberMisscheduled": 0,
        "numberReady": 0,
    }


def _crd(obj: Obj) -> None:
    """A CRD's status once accepted: names accepted, established, stored versions."""
    spec = obj["spec"]
    stored = [v["name"] for v in spec.get("versions", ()) if v.get("storage")]
    condition = {"status": "True", "lastTransitionTime": now()}
    obj["status"] = {
        "acceptedNames": spec["names"],
        "conditions": [
            condition
            | {"type": "NamesAccepted", "reason": "NoConflicts", "message": "no conflicts found"},
            condition
            | {
                "type": "Established",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": stored,
    }


_BY_KIND: dict[str, Callable[[Obj], None]] = {
    "Pod": _pod,
    "Service": _service,
    "Secret": _secret,
    "Namespace": _namespace,
    "Deployment": _workload,
    "ReplicaSet": _workload,
    "Job": _job,
    "DaemonSet": _daemon_set,
    "CustomResourceDefinition": _crd,
}


def apply_create_defaults(obj: Obj) -> None:
    """Fill in a new built-in object's defaults and initial status, in place."""
    fill = _BY_KIND.get(obj.get("kind", ""))
    if fill is not None:
        fill(obj)
