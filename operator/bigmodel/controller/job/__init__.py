"""The BigModelJob controller: thin kopf handlers, pure decisions over a view of the node
pods, the reconciler that applies them, and the telemetry loop."""
