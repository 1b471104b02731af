"""``python -m sessionward``: the same as the ``sessionward`` command."""

from sessionward.cli import main

raise SystemExit(main())
