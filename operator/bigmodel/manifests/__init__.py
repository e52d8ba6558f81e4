"""Pure builders: a resource spec in, the child objects (pods, services, ...) out."""
