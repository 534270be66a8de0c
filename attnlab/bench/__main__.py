"""``python -m attnlab.bench [options]``: the benchmark's command line (see ``--help``)."""

import sys

from attnlab.bench.cli import main

sys.exit(main())
