"""``python -m chatsr.train ...``: the ``chatsr train`` command, for ``torchrun -m``.

>>> from chatsr.cli import build_parser
>>> build_parser().parse_args(["train", "--max-steps", "5"]).max_steps
5
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
