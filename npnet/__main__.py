"""Entry point for `python -m npnet`."""

from .cli import main

raise SystemExit(main())
