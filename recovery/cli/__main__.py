"""`python -m recovery.cli`: the `recovery` command."""

import sys

from recovery.cli import main

sys.exit(main())
