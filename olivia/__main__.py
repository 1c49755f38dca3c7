"""``python -m olivia`` runs the daemon, exactly as the ``olivia`` command."""

import sys

from olivia.server.daemon import main

sys.exit(main())
