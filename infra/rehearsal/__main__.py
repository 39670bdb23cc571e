"""`python -m infra.rehearsal [--stack dev] [--json]`: deploy the stack to emulated
AWS, invoke the deployed handler and show what landed. Exit 0 only if every step
passed; otherwise the failing step is named, with the reason."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.rehearsal",
        description="Deploy the stack to a local emulated AWS (moto_server), invoke the "
        "deployed function and show what landed. Needs no AWS account.",
    )
    parser.add_argument("--stack", default="dev", help="the stack to rehearse (default: dev)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack config value for this rehearsal (repeatable), "
        "e.g. --config marketDataProvider=fixture",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.stack):
        print(f"error: --stack {args.stack!r} is not a stack name", file=sys.stderr)
        return 2

    overrides = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --config {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        overrides[key] = value

    from infra.rehearsal.run import rehearse
    from infra.rehearsal.summary import render

    quiet = args.json
    try:
        result = rehearse(
            args.project_dir,
            args.stack,
            overrides=overrides,
            progress=None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True)),
        )
    except KeyboardInterrupt:
        # The emulator and temp files are already cleaned up by the context managers.
        print("interrupted: the emulator was stopped; nothing real was touched", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print()
        print(render(result))
    if result.ok:
        return 0
    print(f"error: rehearsal step '{result.failed_step}' failed: {result.error}", file=sys.stderr)
    # A stack or config value that is wrong is the user's to fix; anything else is a
    # failed check.
    return 2 if result.user_error else 1


if __name__ == "__main__":
    sys.exit(main())
