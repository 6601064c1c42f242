"""`python -m stackstitch ...`: the same as the `stackstitch` command."""

import sys

from stackstitch.engine.cli import main

sys.exit(main())
