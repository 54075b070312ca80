"""``python -m analysis``: the same as the ``dynloss`` command."""

import sys

if __name__ == "__main__":
    from analysis.cli import main

    sys.exit(main())
