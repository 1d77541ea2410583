"""`python -m kiln`: Kiln's command line (see kiln.cli)."""

import sys

from kiln.cli import main

sys.exit(main())
