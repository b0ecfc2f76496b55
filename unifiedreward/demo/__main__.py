"""``python -m unifiedreward.demo``: see :mod:`unifiedreward.demo`."""

import sys

from unifiedreward.demo import main

sys.exit(main())
