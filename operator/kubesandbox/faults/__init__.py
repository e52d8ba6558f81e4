"""Fault injection: API faults decided by a seeded plan (`plan`), the kubelet's faults (a
pod's processes killed, a pod evicted, a node NotReady), and the admin endpoint that turns
them on and off at run time (`admin`, `client`)."""
