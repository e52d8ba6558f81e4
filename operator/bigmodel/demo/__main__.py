"""`python -m bigmodel.demo` (what `make demo` runs)."""

import sys

from bigmodel.demo.run import main

sys.exit(main())
