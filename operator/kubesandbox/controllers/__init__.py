"""Built-in controllers running inside the sandbox: Deployment, ReplicaSet, Endpoints."""
