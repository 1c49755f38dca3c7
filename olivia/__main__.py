"""``python -m olivia`` runs the daemon, exactly as the ``olivia`` command."""

import sys

from olivia.daemon import main

sys.exit(main())
