"""``python -m dialsim``: the same as the ``dialsim`` command."""

from dialsim.cli import main

raise SystemExit(main())
