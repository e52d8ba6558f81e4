"""The operator pod meets the Pod Security Standards `restricted` profile, control by control
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, as of Kubernetes 1.33),
and the chart's extra hardening: read-only root filesystem, token only where needed."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.helmchart import only, render, requires_helm

pytestmark = requires_helm

Pod = dict[str, Any]

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def containers(spec: Pod) -> Iterator[dict[str, Any]]:
    """Containers, init containers and ephemeral containers: every control covers all."""
    for key in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(key) or ()


def security_contexts(spec: Pod) -> Iterator[dict[str, Any]]:
    """The pod's security context, then each container's."""
    yield spec.get("securityContext") or {}
    for container in containers(spec):
        yield container.get("securityContext") or {}


# Each control returns the violations it finds in a pod (template) spec + its annotations.


def host_process(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [
        "windowsOptions.hostProcess is true"
        for context in security_contexts(spec)
        if (context.get("windowsOptions") or {}).get("hostProcess")
    ]


def host_namespaces(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]


def privileged_containers(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [
        f"{c['name']} is privileged"
        for c in containers(spec)
        if (c.get("securityContext") or {}).get("privileged")
    ]


def capabilities_baseline(spec: Pod, annotations: dict[str, str]) -> list[str]:
    found = []
    for c in containers(spec):
        added = set(((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or ())
        if added - BASELINE_CAPABILITIES:
            found.append(f"{c['name']} adds {sorted(added - BASELINE_CAPABILITIES)}")
    return found


def host_path_volumes(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [v["name"] for v in spec.get("volumes") or () if "hostPath" in v]


def host_ports(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [
        f"{c['name']}:{p['hostPort']}"
        for c in containers(spec)
        for p in c.get("ports") or ()
        if p.get("hostPort")
    ]


def app_armor(spec: Pod, annotations: dict[str, str]) -> list[str]:
    found = [
        f"appArmorProfile {profile['type']}"
        for context in security_contexts(spec)
        for profile in [context.get("appArmorProfile") or {}]
        if profile and profile.get("type") not in ("RuntimeDefault", "Localhost")
    ]
    found += [
        f"{key}={value}"
        for key, value in annotations.items()
        if key.startswith("container.apparmor.security.beta.kubernetes.io/")
        and value != "runtime/default"
        and not value.startswith("localhost/")
    ]
    return found


def selinux(spec: Pod, annotations: dict[str, str]) -> list[str]:
    found = []
    for context in security_contexts(spec):
        options = context.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"seLinuxOptions.type {options['type']}")
        found += [f"seLinuxOptions.{key} is set" for key in ("user", "role") if options.get(key)]
    return found


def proc_mount(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [
        f"{c['name']} procMount {c['securityContext']['procMount']}"
        for c in containers(spec)
        if (c.get("securityContext") or {}).get("procMount", "Default") != "Default"
    ]


def seccomp(spec: Pod, annotations: dict[str, str]) -> list[str]:
    """Restricted: RuntimeDefault or Localhost, on the pod or on every container; never
    Unconfined anywhere."""
    allowed = ("RuntimeDefault", "Localhost")
    found = [
        "seccompProfile Unconfined"
        for context in security_contexts(spec)
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined"
    ]
    pod_type = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    if pod_type not in allowed:
        for c in containers(spec):
            own = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
            if own not in allowed:
                found.append(f"{c['name']} has no RuntimeDefault/Localhost seccomp profile")
    return found


def sysctls(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [
        s["name"]
        for s in (spec.get("securityContext") or {}).get("sysctls") or ()
        if s["name"] not in SAFE_SYSCTLS
    ]


def volume_types(spec: Pod, annotations: dict[str, str]) -> list[str]:
    found = []
    for volume in spec.get("volumes") or ():
        kinds = set(volume) - {"name"}
        if kinds - RESTRICTED_VOLUME_TYPES:
            found.append(f"{volume['name']}: {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    return found


def privilege_escalation(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return [
        f"{c['name']} does not set allowPrivilegeEscalation: false"
        for c in containers(spec)
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
    ]


def running_as_non_root(spec: Pod, annotations: dict[str, str]) -> list[str]:
    pod_value = (spec.get("securityContext") or {}).get("runAsNonRoot")
    found = []
    for c in containers(spec):
        own = (c.get("securityContext") or {}).get("runAsNonRoot")
        if own is False or (own is None and pod_value is not True):
            found.append(f"{c['name']} may run as root (runAsNonRoot)")
    return found


def running_as_non_root_user(spec: Pod, annotations: dict[str, str]) -> list[str]:
    return ["runAsUser 0" for context in security_contexts(spec) if context.get("runAsUser") == 0]


def capabilities_restricted(spec: Pod, annotations: dict[str, str]) -> list[str]:
    found = []
    for c in containers(spec):
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            found.append(f"{c['name']} does not drop ALL capabilities")
        if set(caps.get("add") or ()) - {"NET_BIND_SERVICE"}:
            found.append(f"{c['name']} adds capabilities other than NET_BIND_SERVICE")
    return found


Control = Callable[[Pod, dict[str, str]], list[str]]
RESTRICTED_CONTROLS: dict[str, Control] = {
    # Baseline
    "HostProcess": host_process,
    "Host Namespaces": host_namespaces,
    "Privileged Containers": privileged_containers,
    "Capabilities (baseline)": capabilities_baseline,
    "HostPath Volumes": host_path_volumes,
    "Host Ports": host_ports,
    "AppArmor": app_armor,
    "SELinux": selinux,
    "/proc Mount Type": proc_mount,
    "Seccomp": seccomp,
    "Sysctls": sysctls,
    # Restricted
    "Volume Types": volume_types,
    "Privilege Escalation": privilege_escalation,
    "Running as Non-root": running_as_non_root,
    "Running as Non-root user": running_as_non_root_user,
    "Capabilities (restricted)": capabilities_restricted,
}


def operator_pod(values: dict[str, Any] | None = None) -> tuple[Pod, dict[str, str]]:
    template = only(render(values), "Deployment")["spec"]["template"]
    return template["spec"], template["metadata"].get("annotations") or {}


CUSTOMIZED = {"podAnnotations": {"example.com/a": "b"}, "watch": {"namespaces": ["team-a"]}}


@pytest.mark.parametrize("values", [{}, CUSTOMIZED], ids=["defaults", "customized"])
@pytest.mark.parametrize("control", sorted(RESTRICTED_CONTROLS))
def test_operator_pod_meets_pod_security_restricted(control: str, values: dict[str, Any]) -> None:
    spec, annotations = operator_pod(values)
    violations = RESTRICTED_CONTROLS[control](spec, annotations)
    assert violations == [], f"Pod Security Standards restricted, control {control!r}: {violations}"


def weakened(spec: Pod, change: Callable[[Pod], None]) -> Pod:
    copied = copy.deepcopy(spec)
    change(copied)
    return copied


def _container(spec: Pod) -> dict[str, Any]:
    container: dict[str, Any] = spec["containers"][0]
    return container


WEAKENINGS: dict[str, Callable[[Pod], None]] = {
    "Host Namespaces": lambda s: s.update(hostNetwork=True),
    "Privileged Containers": lambda s: _container(s)["securityContext"].update(privileged=True),
    "HostPath Volumes": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "Volume Types": lambda s: s["volumes"].append(
        {"name": "n", "nfs": {"server": "x", "path": "/"}}
    ),
    "Privilege Escalation": lambda s: _container(s)["securityContext"].pop(
        "allowPrivilegeEscalation"
    ),
    "Running as Non-root": lambda s: s["securityContext"].pop("runAsNonRoot"),
    "Running as Non-root user": lambda s: s["securityContext"].update(runAsUser=0),
    "Seccomp": lambda s: s["securityContext"].pop("seccompProfile"),
    "Capabilities (restricted)": lambda s: _container(s)["securityContext"].pop("capabilities"),
    "Sysctls": lambda s: s["securityContext"].update(
        sysctls=[{"name": "kernel.msgmax", "value": "1"}]
    ),
}


@pytest.mark.parametrize("control", sorted(WEAKENINGS))
def test_the_check_catches_a_pod_that_breaks_the_control(control: str) -> None:
    spec, annotations = operator_pod()
    bad = weakened(spec, WEAKENINGS[control])
    assert RESTRICTED_CONTROLS[control](bad, annotations), f"{control} missed a violation"


def test_operator_has_a_read_only_root_filesystem_and_a_writable_tmp() -> None:
    spec, _ = operator_pod()
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    [tmp] = [v for v in spec["volumes"] if v["name"] == "tmp"]
    assert "emptyDir" in tmp


def test_operator_runs_as_a_numeric_non_root_user() -> None:
    spec, _ = operator_pod()
    assert isinstance(spec["securityContext"]["runAsUser"], int)
    assert spec["securityContext"]["runAsUser"] > 0


def test_token_is_mounted_only_into_the_operator_pod() -> None:
    objects = render()
    assert only(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is True
