"""Built-in controllers running inside the sandbox: Deployment, ReplicaSet, Job, DaemonSet
and Endpoints."""
