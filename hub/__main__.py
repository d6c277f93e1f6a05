"""`python -m hub ...`, the same as `coldchain hub ...`."""

import sys

from hub.cli import main

sys.exit(main())
