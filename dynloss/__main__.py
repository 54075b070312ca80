"""``python -m dynloss``: the ``dynloss`` command (:func:`analysis.cli.main`)."""

import sys

if __name__ == "__main__":
    from analysis.cli import main

    sys.exit(main())
