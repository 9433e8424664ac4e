"""``python -m unilog ...``: the ``unilog`` command."""

import sys

from unilog.cli import main

sys.exit(main())
