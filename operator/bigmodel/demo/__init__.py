"""`make demo`: the whole product on this machine, in a local sandbox.

Trains the CPU example under the operator (`examples/cpu-job.yaml`), serves the model it
trained (`examples/cpu-service.yaml`), sends it completions, and loads it until it scales
up, then lets it scale back down; exits 0 only when all of it worked.
"""
