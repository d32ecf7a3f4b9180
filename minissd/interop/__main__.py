"""``python -m minissd.interop CHECKPOINT -o OUT.npz``: the converter (``convert.main``)."""

import sys

from .convert import main

sys.exit(main())
