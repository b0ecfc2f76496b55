"""``python -m unifiedreward.eval.videoqa [flags]``."""

import sys

from unifiedreward.eval.videoqa.run import main

sys.exit(main())
