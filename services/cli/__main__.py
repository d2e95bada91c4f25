"""`python -m services.cli ...`: the `memcube` command (what `memcube up` starts its processes with)."""

import sys

from services.cli.commands import main

sys.exit(main())
