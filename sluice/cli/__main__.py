"""`python -m sluice.cli`."""

import os
import sys

from sluice.cli.main import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
