import sys

from olivia.tools.bench.main import main

sys.exit(main())
