import sys

from diffsvc.cli import main

sys.exit(main())
