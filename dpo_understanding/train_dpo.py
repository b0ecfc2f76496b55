"""DPO of a vision-language model on image / video preference pairs (entry point).

    python dpo_understanding/train_dpo.py --config dpo_understanding/configs/image_qwen25vl_7b.yaml \
        --data_path preference_data_pair.json --image_folder images/
    python dpo_understanding/train_dpo.py --help        # every flag, with its help

Launch on one or several nodes with ``dpo_understanding/launchers/*.sh``. The logic is in
:mod:`unifiedreward.dpo.vlm`; see ``docs/dpo.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script from anywhere: make the repository's package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedreward.dpo.vlm import main

if __name__ == "__main__":
    sys.exit(main())
