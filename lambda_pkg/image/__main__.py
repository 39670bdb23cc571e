"""`python -m lambda_pkg.image ...`: the same command as `python -m lambda_pkg image ...`."""

import sys

from lambda_pkg.image.command import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
