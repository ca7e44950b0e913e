"""``python -m dropins``: the same as the ``dropins`` command."""

from dropins.runner.cli import main

raise SystemExit(main())
