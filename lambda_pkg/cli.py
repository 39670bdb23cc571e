"""`python -m lambda_pkg build|verify` and `python -m lambda_pkg.lock`: the packager's
command line.

User errors print one line on stderr and exit 2; anything else exits 1, also with
one line (DEBUG=true adds the traceback): errors.report_failure, as for the
operating commands. With --json, stdout carries only the JSON result; progress
goes to stderr, and only on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lambda_pkg import limits
from lambda_pkg.budget import mb, mib
from lambda_pkg.errors import OneLineParser, UserError, and_more, run_reporting


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """The options `build` and `image` share: what to build, for which target, and how."""
    parser.add_argument("--source", default=".", metavar="DIR", help="project root (default: .)")
    parser.add_argument(
        "--runtime", default=limits.DEFAULT_RUNTIME, choices=sorted(limits.RUNTIME_GLIBC)
    )
    parser.add_argument(
        "--architecture", default=limits.DEFAULT_ARCHITECTURE, choices=limits.ARCHITECTURES
    )
    parser.add_argument("--cache-dir", metavar="DIR", help="default: SOURCE/.build")
    parser.add_argument("--no-bytecode", action="store_true", help="ship no .pyc files")
    parser.add_argument(
        "--pip-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra option for pip download (repeatable), e.g. --pip-arg=--no-index",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON, nothing else"
    )


def _parser() -> argparse.ArgumentParser:
    top = OneLineParser(
        prog="python -m lambda_pkg", description="Build and verify the Lambda package."
    )
    sub = top.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    b = sub.add_parser("build", help="build the package (cached; deterministic)")
    add_build_options(b)
    b.add_argument(
        "--requirements",
        metavar="FILE",
        help="default: requirements_Version9.txt, then requirements-lambda.txt",
    )
    b.add_argument(
        "--output",
        metavar="PATH",
        help="also place the zip here, with PATH-stem.manifest.json beside it",
    )
    b.add_argument(
        "--layer", action="store_true", help="put the dependencies in a separate layer zip"
    )
    b.add_argument(
        "--bundle-boto3",
        action="store_true",
        help="ship boto3/botocore/s3transfer instead of using the runtime's",
    )
    lk = sub.add_parser(
        "lock",
        help="resolve the requirements into hash-pinned locks, one per target (needs uv)",
        description="Resolve requirements_Version9.txt (and requirements-service.txt, "
        "constrained to the Lambda's versions) for each target with uv, and write "
        "locks/<input>.<runtime>-<architecture>.txt with every file pinned by hash. "
        "Builds install exactly these files; run this after editing a requirements file.",
    )
    lk.add_argument("--source", default=".", metavar="DIR", help="project root (default: .)")
    lk.add_argument(
        "--requirements",
        action="append",
        default=[],
        metavar="FILE",
        help="inputs to lock (repeatable); the first constrains the others; default: "
        "requirements_Version9.txt, then requirements-service.txt if present",
    )
    lk.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="RUNTIME/ARCH",
        type=_target,
        help="e.g. python3.12/arm64 (repeatable); default: python3.12/x86_64 plus every "
        "target that already has a lock",
    )
    lk.add_argument("--index-url", metavar="URL", help="resolve from this index, not PyPI")
    lk.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help="also look for wheels here (repeatable)",
    )
    lk.add_argument("--no-index", action="store_true", help="only --find-links, no index")
    v = sub.add_parser(
        "verify",
        help="list a package and re-run its checks (imports the handler: runs its code)",
        description="List a package and re-run every pre-upload check. Unless --no-import "
        "is given, it EXECUTES the package's code: it imports the handler with the target "
        "Python, in a throwaway directory, with an empty environment (no credentials), "
        "python -I, a time limit, as user nobody when run as root, and without network "
        "when user namespaces are available (unshare).",
    )
    v.add_argument("zip", metavar="ZIP")
    v.add_argument(
        "--handler",
        "--handler-file",  # upload's name for the same thing
        dest="handler",
        default=limits.DEFAULT_HANDLER_FILE,
        metavar="PATH",
        help=f"handler module file in the zip (default: {limits.DEFAULT_HANDLER_FILE})",
    )
    v.add_argument("--function", default="handler", help="handler function name (default: handler)")
    v.add_argument(
        "--runtime", choices=sorted(limits.RUNTIME_GLIBC), help="default: from the manifest"
    )
    v.add_argument(
        "--architecture", choices=limits.ARCHITECTURES, help="default: from the manifest"
    )
    v.add_argument(
        "--no-import",
        action="store_true",
        help="skip importing the handler (the only step that runs the package's code)",
    )
    v.add_argument("--json", action="store_true", help="print the result as JSON, nothing else")
    # Listed for --help only: main() hands `image` to its own parser before this one runs.
    sub.add_parser("image", help="build the strategy service's OCI image (see: image --help)")
    return top  # fmt: skip


def main(argv: list[str]) -> int:
    if argv[:1] == ["image"]:  # the container image: its own parser (lambda_pkg.image)
        from lambda_pkg.image.command import main as image_main

        return image_main(argv[1:])

    def command() -> int:
        args = _parser().parse_args(argv)
        commands = {"build": _build, "verify": _verify, "lock": _lock}
        return commands[args.command](args)

    return run_reporting(command)


def _target(text: str) -> tuple[str, str]:
    runtime, _, arch = text.partition("/")
    if runtime not in limits.RUNTIME_GLIBC or arch not in limits.ARCHITECTURES:
        choices = ", ".join(f"{r}/{a}" for r in limits.RUNTIMES for a in limits.ARCHITECTURES)
        raise argparse.ArgumentTypeError(f"{text!r} is not a target; use one of {choices}")
    return runtime, arch


def _lock(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lambda_pkg.lock import lock_project

    index: list[str] = []
    if args.index_url:
        index += ["--index-url", args.index_url]
    for link in args.find_links:
        index += ["--find-links", link]
    if args.no_index:
        index.append("--no-index")
    for lock in lock_project(
        Path(args.source),
        requirements=[Path(r) for r in args.requirements],
        targets=args.target,
        index_args=index,
    ):
        print(f"locked {lock.input_name} for {lock.runtime} {lock.architecture}: "
              f"{lock.path} ({len(lock.pins)} pins)")  # fmt: skip
    return 0


def _build(args: argparse.Namespace) -> int:
    from lambda_pkg.builder import ensure, prepare
    from lambda_pkg.progress import Progress

    progress = Progress(enabled=sys.stderr.isatty() and not args.json)
    plan = prepare(
        project_dir=args.source,
        runtime=args.runtime,
        architecture=args.architecture,
        layer=args.layer,
        bundle_boto3=args.bundle_boto3,
        requirements=args.requirements,
        cache_dir=args.cache_dir,
        bytecode=not args.no_bytecode,
        pip_args=args.pip_arg,
    )
    art, built = ensure(plan, progress)
    placed = None
    if args.output:
        from lambda_pkg.api import place_artifact  # shutil, tempfile: only when placing

        placed = place_artifact(art, args.output)
    result = {
        **art.to_json(),
        "path": str(art.path),
        "manifest_path": str(art.manifest_path),
        "built": built,
        "output": str(placed.path) if placed else None,
        "output_manifest": str(placed.manifest_path) if placed else None,
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_build(result, placed.path if placed else art.path)
    return 0


def _print_build(r: dict[str, Any], path: Any) -> None:
    report = r["report"]
    print(f"{'built' if r['built'] else 'up to date'}: {path}")
    if r["output"]:
        print(f"  manifest     {r['output_manifest']}")
        print(f"  (cached as   {r['path']})")
    else:
        print(f"  manifest     {r['manifest_path']}")
    print(f"  sha256       {r['sha256']}")
    print(f"  CodeSha256   {r['sha256_b64']}")
    print(f"  zipped       {mib(r['size'])} ({r['size']:,} bytes; direct upload limit "
          f"{mib(report['direct_upload_limit'])})")  # fmt: skip
    total = report["unzipped_total"]
    print(f"  unzipped     {mb(total)} ({total:,} of {report['unzipped_limit']:,} bytes, "
          f"{total / report['unzipped_limit']:.0%})")  # fmt: skip
    if r.get("layer"):
        layer = r["layer"]
        zipped, unzipped = mib(layer["size"]), mb(layer["unzipped_size"])
        print(f"  layer        {layer['zip']}: {zipped} zipped, {unzipped} unzipped")
    bc = r.get("bytecode")
    print(
        f"  files        {r['files']:,}"
        + (f" ({bc['files']:,} .pyc for Python {bc['python']})" if bc else "")
    )
    print(f"  {r['runtime']} {r['architecture']}; input {r['input_hash'][:16]}")
    if r["largest_distributions"]:
        print("  largest distributions (unzipped):")
        for d in r["largest_distributions"][:8]:
            print(f"    {mb(d['unzipped']):>9}  {d['name']} {d['version']}")
    sections = (
        ("warnings", report["warnings"]),
        ("recommendations", report["recommendations"]),
        ("notes", r["notes"]),
    )
    for title, items in sections:
        if items:
            print(f"  {title}:")
            for item in items:
                print(f"    - {item}")


def _verify(args: argparse.Namespace) -> int:
    from lambda_pkg.verify import verify

    result = verify(
        args.zip,
        handler=args.handler,
        function=args.function,
        runtime=args.runtime,
        architecture=args.architecture,
        import_check=not args.no_import,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        print(f"  {'Length':>10}  Name")
        print(f"  {'-' * 10}  ----")
        for item in result.listing:
            print(f"  {item['size']:>10}  {item['name']}")
        if result.entries > len(result.listing):
            print(f"  ... {result.entries - len(result.listing):,} more")
        print(f"  {result.entries:,} files, {result.runtime} {result.architecture}")
        if result.report:
            rep = result.report
            print(f"  zipped {mib(rep['zipped'])}, unzipped {mb(rep['unzipped_total'])} "
                  f"of {mb(rep['unzipped_limit'])}")  # fmt: skip
            for item in rep["warnings"] + rep["recommendations"]:
                print(f"  - {item}")
        if result.import_seconds is not None and result.ok:
            print(f"  handler imported in {result.import_seconds:.2f} s")
        for note in result.notes:
            print(f"  note: {note}")
        for problem in result.problems:
            print(f"  PROBLEM: {problem}")
        print("OK" if result.ok else "FAILED")
    if not result.ok:
        raise UserError(f"verify {args.zip}: {result.problems[0]}{and_more(result.problems)}")
    return 0
