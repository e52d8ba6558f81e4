"""The sandbox's network on the host loopback: addresses, cluster DNS, services, the shim."""
