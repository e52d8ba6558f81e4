"""T_i, T and S: collection from pods, aggregation and Prometheus export.

- `collect`: scrape pods' `/metrics` concurrently, read only the wanted series.
- `aggregate`: T, S, relative speeds, the sustained-straggler rule (pure).
- `status`: `status.telemetry`, the StragglerDetected condition and events (pure).
- `export`: the operator's own Prometheus metrics (`default_metrics()`).
- `observe`: one round of one resource, the single call a controller daemon makes.
"""
