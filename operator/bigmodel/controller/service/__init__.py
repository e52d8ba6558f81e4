"""The BigModelService controller: thin kopf handlers, pure decisions and autoscaler over
views of the replica pods and children, and the reconciler that applies them."""
