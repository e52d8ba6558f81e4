"""`python -m bigmodel.serving`: the server image's entry point."""

import sys

from bigmodel.serving.server import main

if __name__ == "__main__":
    sys.exit(main())
