"""A local Kubernetes API and process kubelet for development and tests (one machine)."""
