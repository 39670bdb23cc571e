"""`python -m infra.rehearsal.stackinfo --stack dev`: the stack settings that
scripts/deploy.sh needs before Pulumi runs (to build the matching package and to
name the function in the rollback hint), as `key=value` lines.

Read from Pulumi.yaml and Pulumi.<stack>.yaml the way the rehearsal reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.names import Names
from infra.rehearsal.errors import RehearsalError
from infra.rehearsal.program import load_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]


def stack_info(project_dir: Path, stack: str) -> dict[str, str]:
    config = load_stack_config(project_dir, stack)
    environment = config.get("environment") or stack
    layer = json.loads(config.get("dependencyLayer") or "false")
    return {
        "environment": environment,
        "runtime": config.get("runtime") or "python3.12",
        "architecture": config.get("architecture") or "x86_64",
        "layer": "true" if layer is True else "false",
        "function": Names.for_env(environment).function,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.rehearsal.stackinfo")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    try:
        info = stack_info(args.project_dir, args.stack)
    except RehearsalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in info.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
