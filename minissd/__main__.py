"""``python -m minissd ...`` runs the ``minissd`` command."""

import sys

from .cli import main

sys.exit(main())
