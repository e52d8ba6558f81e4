"""Code that runs inside training pods: step timer, metrics endpoint, example trainer."""
