"""T_i, T and S: collection from pods, aggregation and Prometheus export."""
