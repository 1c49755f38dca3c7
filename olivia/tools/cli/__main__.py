import sys

from olivia.tools.cli.main import main

sys.exit(main())
