"""``python -m neurolatent``: the same as the ``neurolatent`` command."""

import sys

from neurolatent.cli import main

sys.exit(main())
