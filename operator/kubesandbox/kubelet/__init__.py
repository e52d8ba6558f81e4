"""The kubelet half: nodes, scheduling, and pods run as host processes."""
