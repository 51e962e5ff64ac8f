import sys

from optcert.cli.main import main

sys.exit(main())
