"""`python -m kubesandbox up ...`."""

import sys

from kubesandbox.cli import main

sys.exit(main(prog="python -m kubesandbox"))
