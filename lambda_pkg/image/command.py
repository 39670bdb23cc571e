"""`python -m lambda_pkg image`: build the service's image, write it as an OCI layout,
optionally push it.

User errors print one line on stderr and exit 2 (errors.report_failure, as for
`build`). With --json, stdout carries only the JSON result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lambda_pkg.budget import mib
from lambda_pkg.cli import add_build_options
from lambda_pkg.errors import OneLineParser, run_reporting
from lambda_pkg.image.base import LOCAL
from lambda_pkg.image.build import build_image
from lambda_pkg.progress import Progress


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m lambda_pkg image",
        description="Build the strategy service's container image (OCI), without Docker.",
    )
    add_build_options(p)
    p.add_argument("--output", metavar="DIR", help="write the image here as an OCI image layout")
    p.add_argument(
        "--base",
        metavar="REF|DIR",
        help=f"base image: NAME[:TAG]@sha256:DIGEST, an OCI layout DIR, or '{LOCAL}' (the "
        "project's own base, from this machine's Python); default: the official "
        "python:X.Y-slim pinned for the runtime",
    )
    p.add_argument(
        "--requirements",
        metavar="FILE",
        help="default: requirements-service.txt, then requirements_Version9.txt",
    )
    p.add_argument(
        "--push",
        metavar="REGISTRY/REPO[:TAG]",
        help="push the image there (blobs the repository lacks, then the manifest); "
        "ECR credentials come from GetAuthorizationToken",
    )
    return p


def main(argv: list[str]) -> int:
    return run_reporting(lambda: run(parser().parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    progress = Progress(enabled=sys.stderr.isatty() and not args.json)
    image, built = build_image(
        project_dir=args.source, runtime=args.runtime, architecture=args.architecture,
        base=args.base, cache_dir=args.cache_dir, requirements=args.requirements,
        pip_args=args.pip_arg, bytecode=not args.no_bytecode, progress=progress,
    )  # fmt: skip
    result: dict[str, Any] = {**image.to_json(), "built": built, "output": None, "push": None}
    if args.output:
        result["output"] = str(image.write_layout(Path(args.output)))
    if args.push:
        pushed = image.push(args.push)
        result["push"] = {
            "reference": pushed.reference,
            "uploaded": list(pushed.uploaded),
            "mounted": list(pushed.mounted),
            "existing": list(pushed.existing),
            "uploaded_bytes": pushed.uploaded_bytes,
        }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print(result)
    return 0


def _print(r: dict[str, Any]) -> None:
    print(f"{'built' if r['built'] else 'up to date'}: {r['digest']}")
    if r["output"]:
        print(f"  OCI layout   {r['output']}")
    print(f"  base         {r['base']['source']} ({r['base']['digest'][:19]}...)")
    for layer in r["layers"]:
        if layer["role"] != "base":
            print(f"  {layer['role']:<12} {layer['digest'][:19]}...  {mib(layer['size'])} "
                  f"({layer['files']:,} files)")  # fmt: skip
    print(f"  size         {mib(r['size'])} compressed, all layers")
    print(f"  {r['runtime']} {r['architecture']}; input {r['input_hash'][:16]}")
    if r["push"]:
        p = r["push"]
        print(f"  pushed       {p['reference']}")
        print(f"               {len(p['uploaded'])} blobs uploaded ({mib(p['uploaded_bytes'])}), "
              f"{len(p['existing'])} already there, {len(p['mounted'])} mounted")  # fmt: skip
    for note in r["notes"]:
        print(f"  note: {note}")
