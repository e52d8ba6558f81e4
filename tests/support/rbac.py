"""The operator's reviewed RBAC allow-list: what the chart may grant and what the operator
cannot run without, compared with the rendered chart (unit tests) and with the requests the
operator really makes in the sandbox (integration tests)."""

from __future__ import annotations

from support.helmchart import Grant


def verbs(group: str, resource: str, *names: str) -> set[Grant]:
    """One grant per verb of `names` on `resource` of `group`."""
    return {Grant(group, resource, verb) for verb in names}


# Reviewed: each line is a call the operator makes (kopf's or ours), seen in the sandbox's
# request log by tests/integration/test_rbac.py (podgroups: a path the sandbox cannot reach).
# Widening it needs a reason in templates/_rbac.tpl next to the rule.
CLUSTER_SCOPED_ALLOWED = (
    verbs("apiextensions.k8s.io", "customresourcedefinitions", "list", "watch")  # kopf scan
    | verbs("", "namespaces", "list", "watch")  # kopf, namespaced mode only
    | verbs("", "nodes", "list")  # GPU capacity check of new jobs
)
NAMESPACED_ALLOWED = (
    verbs("bigmodel.dev", "bigmodeljobs", "list", "watch", "patch", "delete")
    | verbs("bigmodel.dev", "bigmodeljobs/status", "patch")
    | verbs("bigmodel.dev", "bigmodelservices", "list", "watch", "patch")
    | verbs("bigmodel.dev", "bigmodelservices/status", "patch")
    | verbs("", "events", "create")
    | verbs("", "pods", "list", "watch", "create", "delete")
    # Services and Deployments are deleted by the garbage collector with their owner.
    | verbs("", "services", "list", "watch", "create", "patch")
    | verbs("apps", "deployments", "list", "watch", "patch")
    | verbs("scheduling.volcano.sh", "podgroups", "create")  # ditto
    | verbs("scheduling.x-k8s.io", "podgroups", "create")
)
LEADER_ELECTION_ALLOWED = verbs("coordination.k8s.io", "leases", "create", "get", "update")
"""In the release namespace only (get and update of the release's own lease only)."""
ALLOWED = CLUSTER_SCOPED_ALLOWED | NAMESPACED_ALLOWED | LEADER_ELECTION_ALLOWED

# What kopf and the controllers cannot run without.
REQUIRED = (
    verbs("apiextensions.k8s.io", "customresourcedefinitions", "list", "watch")
    | verbs("bigmodel.dev", "bigmodeljobs", "list", "watch", "patch")
    | verbs("bigmodel.dev", "bigmodeljobs/status", "patch")
    | verbs("bigmodel.dev", "bigmodelservices", "list", "watch", "patch")
    | verbs("bigmodel.dev", "bigmodelservices/status", "patch")
    | verbs("", "events", "create")
    | verbs("", "pods", "list", "watch", "create", "delete")
    | verbs("", "services", "list", "watch", "create", "patch")
    | verbs("apps", "deployments", "list", "watch", "patch")
    | LEADER_ELECTION_ALLOWED
)
