"""`python -m daemon ...` is `coldchain ...`."""

from daemon.app.cli import main

raise SystemExit(main())
