"""``python -m neurolatent``: the same as the ``neurolatent`` command."""

import sys

from neurolatent.pipeline.cli import main

sys.exit(main())
