"""`python -m daemon ...` is `coldchain ...`."""

from daemon.cli import main

raise SystemExit(main())
