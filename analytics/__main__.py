"""`python -m analytics`: the command line (DESIGN §7)."""

import sys

from analytics.cli import main

sys.exit(main())
