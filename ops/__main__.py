"""`python -m ops <command>`: the operator CLI (ops.cli)."""

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    try:
        import boto3  # noqa: F401
    except ImportError:
        # Run with an interpreter that lacks boto3 (the system Python, not the
        # venv's): one line naming the one that works, not a traceback.
        venv = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
        print(
            f"error: {sys.executable} has no boto3: run scripts/bootstrap.sh once, then use "
            f"{os.path.relpath(venv)} -m ops (the project's virtual environment)",
            file=sys.stderr,
        )
        return 2
    from ops.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
