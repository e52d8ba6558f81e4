"""TensorFlow's launch contract: TFJob's `TF_CONFIG`, the command run as given in every pod.

Workers are `<job>-node-<i>` (worker 0 is the chief, as MultiWorkerMirroredStrategy expects),
parameter servers `<job>-ps-<i>`, the evaluator `<job>-evaluator`. The job succeeds when
every worker has exited 0; parameter servers never exit and are stopped then, and the
evaluator neither decides nor fails the job.
"""

from __future__ import annotations

import json
from typing import Any

from bigmodel.api.job import BigModelJob, BigModelJobSpec, TensorFlowOptions
from bigmodel.manifests.frameworks.contract import (
    Contract,
    Launch,
    Member,
    OnFailure,
    Role,
    WhenDone,
)
from bigmodel.manifests.names import service_name
from bigmodel.manifests.pods import env

TF_CONFIG = "TF_CONFIG"
WORKER, PS, EVALUATOR = "worker", "ps", "evaluator"


def tf_config(job: BigModelJob, roles: tuple[Role, ...], member: Member) -> dict[str, Any]:
    """TF_CONFIG of `member` as Kubeflow's TFJob writes it: every task's address by role
    (`<pod>.<job>.<namespace>.svc:<masterPort>`, roles without pods left out), this task's
    type and index, and `environment: cloud`."""
    name, namespace = job.metadata["name"], job.metadata.get("namespace") or "default"
    suffix = f"{service_name(name)}.{namespace}.svc:{job.spec.master_port}"
    cluster = {
        role.name: [f"{role.pod_name(name, i)}.{suffix}" for i in role.indices]
        for role in roles
        if role.indices
    }
    task = {"type": member.role, "index": member.index}
    return {"cluster": cluster, "task": task, "environment": "cloud"}


class TensorFlow(Contract):
    """Workers, parameter servers and an evaluator, each with its TF_CONFIG."""

    port_name = "tfjob-port"

    def roles(self, spec: BigModelJobSpec) -> tuple[Role, ...]:
        options = spec.tensorflow or TensorFlowOptions()
        return (
            Role(WORKER, range(spec.nodes), stem="node", decides=True, measured=True),
            Role(PS, range(options.parameter_servers), when_done=WhenDone.STOP),
            Role(
                EVALUATOR,
                range(options.evaluators),
                indexed=False,
                when_done=WhenDone.STOP,
                on_failure=OnFailure.IGNORE,
            ),
        )

    def launch(self, job: BigModelJob, member: Member) -> Launch:
        config = tf_config(job, self.roles(job.spec), member)
        variables = [env(TF_CONFIG, json.dumps(config, separators=(",", ":")))]
        return Launch(list(job.spec.command), list(job.spec.args), variables)

    def owns_env(self, name: str) -> bool:
        return name == TF_CONFIG
