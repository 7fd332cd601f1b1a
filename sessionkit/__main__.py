"""``python -m sessionkit``: the command line."""

import sys

from sessionkit.cli import main

sys.exit(main())
