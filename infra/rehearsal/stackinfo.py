"""`python -m infra.rehearsal.stackinfo --stack dev`: the stack settings that
scripts/deploy.sh needs before Pulumi runs (to build the matching package and to
name the function in the rollback hint), as `key=value` lines.

Read from Pulumi.yaml and Pulumi.<stack>.yaml and validated the way the program
validates them (infra.config, the one reader), so a bad value fails here, naming the
key, before any build.

`--config KEY=VALUE` (repeatable) lays values over the stack's exactly as the
rehearsal's own `--config` does, so `deploy.sh --local --config runtime=python3.11`
builds the package the rehearsal will deploy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.config import ConfigError, parse_overrides, parse_values, read_stack_file

PROJECT_DIR = Path(__file__).resolve().parents[2]


def stack_info(
    project_dir: Path, stack: str, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    # deploy.sh takes --config with --local only. Encrypted values count as set: a real
    # deploy has the CLI decrypt them.
    cfg = parse_values(read_stack_file(project_dir, stack).with_values(overrides or {}))
    return {
        "environment": cfg.environment,
        "runtime": cfg.runtime,
        "architecture": cfg.architecture,
        "layer": "true" if cfg.dependency_layer else "false",
        "function": cfg.names.function,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.rehearsal.stackinfo")
    parser.add_argument("--stack", required=True)
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack config value, as the rehearsal's --config does (repeatable)",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    try:
        info = stack_info(args.project_dir, args.stack, parse_overrides(args.config))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in info.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
