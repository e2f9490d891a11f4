import sys

from bumpdiff_core.cli import main

sys.exit(main())
