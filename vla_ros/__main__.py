"""``python -m vla_ros ...`` is the ``vla-ros`` command."""

from .cli import main

raise SystemExit(main())
