"""``python -m chatsr.cli COMMAND ...``, e.g. ``torchrun --nproc_per_node 2 -m chatsr.cli train``.
"""

import sys

from chatsr.cli.main import main

sys.exit(main())
