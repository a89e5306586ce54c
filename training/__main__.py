"""``python -m training`` is the ``cvm`` command."""

import sys

from training.cli import main

sys.exit(main())
