"""Spark's launch contract: a standalone cluster in pods (a master and `nodes` workers,
started with `spark-class`) and the user's application in client mode in the driver pod.

Pods are `<job>-master`, `<job>-node-<i>` and `<job>-driver`. The driver gets
`SPARK_MASTER_URL` (for `spark-submit --master $SPARK_MASTER_URL app.py`) and
`PYSPARK_SUBMIT_ARGS` (so that `python app.py` with a plain `SparkSession.builder` joins the
cluster): the master, the driver's own address and UI port, and executor cores and memory
from the pod resources (one executor per worker); it starts once the master answers
(`bigmodel.runtime.await_address`). The job succeeds when the driver exits 0;
the master and workers are stopped then. The driver's failure or the master's loss restarts
the whole cluster; a lost worker is Spark's business. Each worker runs under
`bigmodel.runtime.spark_tasks`, which serves its executors' task time from the driver's REST
API for the operator's T_i.
"""

from __future__ import annotations

from bigmodel.api.job import BigModelJob, BigModelJobSpec
from bigmodel.manifests.frameworks.contract import (
    WORKER,
    Contract,
    Launch,
    Measure,
    Member,
    Role,
    RoleService,
    engine_roles,
    once_answering,
)
from bigmodel.manifests.names import service_name
from bigmodel.manifests.pods import env
from bigmodel.manifests.quantities import memory_bytes, whole_cpus

MASTER, DRIVER = "master", "driver"
MASTER_PORT = 7077
MASTER_UI_PORT = 8080
WORKER_UI_PORT = 8081
DRIVER_UI_PORT = 4040
MASTER_URL = "SPARK_MASTER_URL"
SUBMIT_ARGS = "PYSPARK_SUBMIT_ARGS"
MIN_EXECUTOR_MIB = 512
_SPARK_CLASS = ["spark-class"]


def host(job: BigModelJob, stem: str, index: int | None = None) -> str:
    """A pod's DNS name through the job's headless Service (`<job>-<stem>[-<index>]`)."""
    name = job.metadata["name"]
    pod = f"{name}-{stem}" if index is None else f"{name}-{stem}-{index}"
    return f"{pod}.{service_name(name)}"


def master_url(job: BigModelJob) -> str:
    return f"spark://{host(job, MASTER)}:{MASTER_PORT}"


def executor_mib(spec: BigModelJobSpec) -> int | None:
    """Memory of the one executor of a worker: half the pod's memory (the worker daemon,
    the Python workers and the JVM's overhead share the rest), None when unset."""
    memory = memory_bytes(spec.resources)
    return None if memory is None else max(MIN_EXECUTOR_MIB, memory // 2**21)


def submit_args(job: BigModelJob) -> str:
    """`PYSPARK_SUBMIT_ARGS` of the driver: client mode on the standalone master."""
    spec = job.spec
    conf = {
        "spark.driver.host": host(job, DRIVER),
        "spark.ui.port": DRIVER_UI_PORT,
        "spark.executor.cores": whole_cpus(spec.resources),
    }
    memory = executor_mib(spec)
    if memory is not None:
        conf["spark.executor.memory"] = f"{memory}m"
    flags = " ".join(f"--conf {key}={value}" for key, value in conf.items())
    return f"--master {master_url(job)} {flags} pyspark-shell"


def worker_command(job: BigModelJob, index: int) -> list[str]:
    """The standalone worker, under the task-time exporter when metrics are on."""
    spec, me = job.spec, host(job, "node", index)
    memory = executor_mib(spec)
    worker = [
        *_SPARK_CLASS, "org.apache.spark.deploy.worker.Worker",
        "--host", me,
        "--cores", str(whole_cpus(spec.resources)),
        *(["--memory", f"{memory}m"] if memory is not None else []),
        "--webui-port", str(WORKER_UI_PORT),
        master_url(job),
    ]  # fmt: skip
    if not spec.metrics.enabled:
        return worker
    driver_ui = f"http://{host(job, DRIVER)}:{DRIVER_UI_PORT}"
    exporter = ["python", "-m", "bigmodel.runtime.spark_tasks", "--driver-ui", driver_ui]
    return [*exporter, "--executor-host", me, "--", *worker]


class Spark(Contract):
    """A master, `nodes` workers, the driver decides."""

    port_name = "spark"
    measure = Measure.TASKS

    def roles(self, spec: BigModelJobSpec) -> tuple[Role, ...]:
        return engine_roles(MASTER, spec.nodes, DRIVER)

    def launch(self, job: BigModelJob, member: Member) -> Launch:
        if member.role == MASTER:
            master = [
                "org.apache.spark.deploy.master.Master", "--host", host(job, MASTER),
                "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT),
            ]  # fmt: skip
            return Launch(_SPARK_CLASS, master)
        if member.role == WORKER:
            command = worker_command(job, member.index)
            return Launch(command[:1], command[1:])
        variables = [env(MASTER_URL, master_url(job)), env(SUBMIT_ARGS, submit_args(job))]
        driver = once_answering(host(job, MASTER), MASTER_PORT, list(job.spec.command))
        return Launch(driver[:1], [*driver[1:], *job.spec.args], variables)

    def owns_env(self, name: str) -> bool:
        return name in (MASTER_URL, SUBMIT_ARGS)

    def services(self, job: BigModelJob) -> list[RoleService]:
        """`<job>-master` (the master and its UI) and `<job>-driver` (the application UI)."""
        return [
            RoleService(MASTER, {"spark": MASTER_PORT, "http-ui": MASTER_UI_PORT}),
            RoleService(DRIVER, {"http-ui": DRIVER_UI_PORT}),
        ]
