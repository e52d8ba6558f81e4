"""The API server half: storage, the semantics of the Kubernetes API, and its HTTP face."""
