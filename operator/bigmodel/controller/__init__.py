"""kopf handlers (thin) and reconcile decisions (pure), one module per kind."""
