"""`python -m kuryr_cleanup.sim.generate --fixtures fixtures/`: rewrite the recorded fixtures."""

import sys

from kuryr_cleanup.sim.generate.fixtures import main

sys.exit(main())
