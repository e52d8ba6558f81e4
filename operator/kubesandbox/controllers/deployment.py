"""The Deployment controller: a ReplicaSet per pod template, rolled with maxSurge and
maxUnavailable (or Recreate), and the status `kubectl rollout status` reads."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass

from kubesandbox.access import ControllerAccess
from kubesandbox.controllers.base import Controller, controller_of, owner_reference
from kubesandbox.controllers.replicaset import RS_KEY
from kubesandbox.objects import Obj, now

DEPLOYMENT_KEY = "deployments.apps"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    """A short, stable name suffix for a pod template."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:6])
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def scaled(value: int | str | None, replicas: int, round_up: bool) -> int:
    """An int-or-percent of `replicas` (maxSurge rounds up, maxUnavailable down)."""
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * replicas / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    """maxSurge and maxUnavailable as pod counts (never both 0)."""
    spec = deployment["spec"]
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    replicas = int(spec.get("replicas", 1))
    surge = scaled(rolling.get("maxSurge"), replicas, round_up=True)
    unavailable = scaled(rolling.get("maxUnavailable"), replicas, round_up=False)
    return surge, unavailable if surge or unavailable else 1


@dataclass(frozen=True)
class Scale:
    """One ReplicaSet's desired (spec) and available replicas."""

    spec: int
    available: int


def rolling_plan(
    replicas: int, surge: int, unavailable: int, new: Scale, old: list[Scale]
) -> tuple[int, list[int]]:
    """One rolling-update step (as the deployment controller takes it): the new ReplicaSet
    grows within replicas + maxSurge, then old ones shrink while replicas - maxUnavailable
    stay available. Returns the new spec and the old specs (oldest first)."""
    total = new.spec + sum(o.spec for o in old)
    new_spec = new.spec
    if new.spec < replicas:
        new_spec = min(replicas, new.spec + max(0, replicas + surge - total))
    elif not any(o.spec for o in old):
        new_spec = replicas
    total += new_spec - new.spec
    min_available = replicas - unavailable
    room = total - min_available - (new_spec - new.available)
    old_specs = [o.spec for o in old]
    for i, o in enumerate(old):  # unhealthy old replicas go first
        cut = min(max(0, room), o.spec - o.available)
        old_specs[i] -= cut
        room -= cut
    available = new.available + sum(
        min(o.available, s) for o, s in zip(old, old_specs, strict=True)
    )
    room = min(room, available - min_available)
    for i in range(len(old_specs)):
        cut = min(max(0, room), old_specs[i])
        old_specs[i] -= cut
        room -= cut
    return new_spec, old_specs


def recreate_plan(
    replicas: int, new: Scale, old: list[Scale], old_running: int
) -> tuple[int, list[int]]:
    """Recreate: old ReplicaSets go to 0, the new one grows once their pods are gone."""
    if any(o.spec for o in old) or old_running:
        return new.spec, [0] * len(old)
    return replicas, [0] * len(old)


def _condition(old: list[Obj], kind: str, ok: bool, reason: str, message: str) -> Obj:
    stamp = now()
    previous = next((c for c in old if c["type"] == kind), None)
    status = "True" if ok else "False"
    same = previous is not None and previous["status"] == status
    changed = previous is None or previous.get("reason") != reason
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": stamp if changed or not previous else previous["lastUpdateTime"],
        "lastTransitionTime": previous["lastTransitionTime"] if same and previous else stamp,
        "reason": reason,
        "message": message,
    }


def deployment_status(deployment: Obj, new: Obj | None, all_rs: list[Obj]) -> Obj:
    """replicas, updated/ready/available/unavailable replicas, conditions, observedGeneration."""
    spec, old_status = deployment["spec"], deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))

    def total(field: str, sets: list[Obj]) -> int:
        return sum(int((rs.get("status") or {}).get(field, 0)) for rs in sets)

    current = total("replicas", all_rs)
    updated = total("replicas", [new] if new else [])
    available = total("availableReplicas", all_rs)
    _, unavailable = surge_and_unavailable(deployment)
    conditions = old_status.get("conditions") or []
    name = new["metadata"]["name"] if new else ""
    complete = updated == replicas and current == replicas and available >= replicas
    available_ok = available >= replicas - unavailable
    return {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": current,
        "updatedReplicas": updated,
        "readyReplicas": total("readyReplicas", all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(0, replicas - available),
        "conditions": [
            _condition(
                conditions,
                "Available",
                available_ok,
                "MinimumReplicasAvailable" if available_ok else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available_ok
                else "Deployment does not have minimum availability.",
            ),
            _condition(
                conditions,
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{name}" is progressing.',
            ),
        ],
    }


def new_replica_set(deployment: Obj, pod_hash: str, replicas: int, revision: int) -> Obj:
    """The ReplicaSet of the deployment's current template."""
    meta, spec = deployment["metadata"], deployment["spec"]
    template = copy.deepcopy(spec["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = copy.deepcopy(spec["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "labels": {**template["metadata"]["labels"]},
            "annotations": {REVISION: str(revision)},
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }


def _scale(rs: Obj) -> Scale:
    status = rs.get("status") or {}
    return Scale(int(rs["spec"].get("replicas", 0)), int(status.get("availableReplicas", 0)))


class DeploymentController(Controller):
    """Rolls Deployments through their ReplicaSets, reacting to both kinds' events."""

    user_agent = "sandbox-deployment-controller"

    def __init__(self, api: ControllerAccess) -> None:
        super().__init__(api, [DEPLOYMENT_KEY, RS_KEY])

    async def handle(self, key: str, kind: str, obj: Obj) -> None:
        """Sync the deployment that changed, or the one that owns the ReplicaSet."""
        if key != RS_KEY:
            if kind != "DELETED":
                self.sync(obj)
            return
        owner = controller_of(obj, "Deployment")
        found = self.api.by_uid(owner) if owner else None
        if found is not None and found[0] != RS_KEY:
            self.sync(found[1])

    def sync(self, deployment: Obj) -> None:
        """Take one rollout step and write the status."""
        meta, spec = deployment["metadata"], deployment["spec"]
        if meta.get("deletionTimestamp"):
            return
        ns = meta["namespace"]
        owned = self.api.dependents(meta["uid"], RS_KEY)
        owned.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, 0)))
        pod_hash = template_hash(spec["template"])
        new = next((rs for rs in owned if rs["metadata"]["name"].endswith(f"-{pod_hash}")), None)
        old = [rs for rs in owned if rs is not new]
        replicas = int(spec.get("replicas", 1))
        if not spec.get("paused"):
            new = self._step(deployment, pod_hash, new, old, replicas)
        live = self.api.dependents(meta["uid"], RS_KEY)
        current = self.api.get(DEPLOYMENT_KEY, ns, meta["name"])
        if current is not None:
            self.write(DEPLOYMENT_KEY, current, deployment_status(current, new, live))

    def _step(
        self, deployment: Obj, pod_hash: str, new: Obj | None, old: list[Obj], replicas: int
    ) -> Obj:
        """Scale the ReplicaSets one step; returns the (possibly created) new one."""
        new_scale = _scale(new) if new else Scale(0, 0)
        old_scales = [_scale(rs) for rs in old]
        if (deployment["spec"].get("strategy") or {}).get("type") == "Recreate":
            running = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in old)
            new_spec, old_specs = recreate_plan(replicas, new_scale, old_scales, running)
        else:
            surge, unavailable = surge_and_unavailable(deployment)
            new_spec, old_specs = rolling_plan(replicas, surge, unavailable, new_scale, old_scales)
        for rs, spec in zip(old, old_specs, strict=True):
            if spec != rs["spec"].get("replicas"):
                self.write(RS_KEY, {**rs, "spec": {**rs["spec"], "replicas": spec}})
        if new is None:
            revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, 0)) for rs in old]
            body = new_replica_set(deployment, pod_hash, new_spec, max(revisions, default=0) + 1)
            return self.write(RS_KEY, body)
        if new_spec != new["spec"].get("replicas"):
            return self.write(RS_KEY, {**new, "spec": {**new["spec"], "replicas": new_spec}})
        return new
