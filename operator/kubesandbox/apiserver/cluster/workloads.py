"""kube-apiserver's checks of the workload fields the sandbox's Job and DaemonSet controllers
rely on (pure): what they refuse is 422 Invalid with one cause per field, in kube's words."""

from __future__ import annotations

from collections.abc import Callable

from kubesandbox.apiserver.errors import Cause
from kubesandbox.apiserver.selectors import selector_from_label_selector
from kubesandbox.objects import Obj


def _unsupported(field: str, value: object, allowed: tuple[str, ...]) -> Cause:
    listed = ", ".join(f'"{a}"' for a in allowed)
    message = f'Unsupported value: "{value}": supported values: {listed}'
    return Cause("FieldValueNotSupported", message, field)


def _restart_policy(template_spec: Obj, allowed: tuple[str, ...]) -> list[Cause]:
    """The template's restartPolicy (Always when unset, as kube defaults it) among `allowed`."""
    policy = template_spec.get("restartPolicy") or "Always"
    if policy in allowed:
        return []
    return [_unsupported("spec.template.spec.restartPolicy", policy, allowed)]


def _containers(template_spec: Obj) -> list[Cause]:
    if template_spec.get("containers"):
        return []
    return [Cause("FieldValueRequired", "Required value", "spec.template.spec.containers")]


def _job(job: Obj) -> list[Cause]:
    spec = job.get("spec") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    causes = _containers(template_spec) + _restart_policy(template_spec, ("OnFailure", "Never"))
    for field in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            message = f"Invalid value: {value}: must be greater than or equal to 0"
            causes.append(Cause("FieldValueInvalid", message, f"spec.{field}"))
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        causes.append(_unsupported("spec.completionMode", mode, ("NonIndexed", "Indexed")))
    elif mode == "Indexed" and spec.get("completions") is None:
        message = "Required value: when completion mode is Indexed"
        causes.append(Cause("FieldValueRequired", message, "spec.completions"))
    return causes


def _daemon_set(ds: Obj) -> list[Cause]:
    spec = ds.get("spec") or {}
    template = spec.get("template") or {}
    causes = _containers(template.get("spec") or {})
    causes += _restart_policy(template.get("spec") or {}, ("Always",))
    selector = spec.get("selector")
    if not selector:
        return [*causes, Cause("FieldValueRequired", "Required value", "spec.selector")]
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not all(r.matches(labels) for r in selector_from_label_selector(selector)):
        message = f"Invalid value: {labels}: `selector` does not match template `labels`"
        causes.append(Cause("FieldValueInvalid", message, "spec.template.metadata.labels"))
    return causes


_CHECKS: dict[str, Callable[[Obj], list[Cause]]] = {"Job": _job, "DaemonSet": _daemon_set}


def problems(obj: Obj) -> list[Cause]:
    """What kube would refuse in a Job or DaemonSet (nothing for other kinds)."""
    check = _CHECKS.get(obj.get("kind", ""))
    return [] if check is None else check(obj)
