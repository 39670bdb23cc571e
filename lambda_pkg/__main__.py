"""`python -m lambda_pkg <command>`: the packager's commands, and the operator
commands' old names.

build, verify                                  -> lambda_pkg.cli   (packaging)
upload, rollback, status, invoke, coldstarts   -> ops.cli          (`python -m ops`, forwarded)

The operator commands moved to their own package, `ops`, in this release; the old
names keep working and say so on stderr (docs/operations.md, "Renamed").
"""

import sys

# A new packaging command in lambda_pkg.cli gets its line here too (a test checks).
PACKAGING = {
    "build": "build the package (cached; deterministic)",
    "verify": "list a package and re-run its checks",
    "image": "build the strategy service's OCI image (cached; deterministic; no Docker)",
    "lock": "resolve the requirements into hash-pinned locks, one per target (uv)",
}
OPERATING = ("upload", "rollback", "status", "invoke", "coldstarts")
MOVED_NOTE = "note: 'python -m lambda_pkg {command}' is now 'python -m ops {command}'; forwarding"


def usage() -> str:
    from ops.commands import COMMAND_HELP

    width = max(map(len, [*PACKAGING, *OPERATING])) + 2
    lines = [
        "usage: python -m lambda_pkg COMMAND ...",
        "       python -m lambda_pkg COMMAND --help",
        "",
        "packaging commands:",
        *(f"  {name:<{width}}{text}" for name, text in PACKAGING.items()),
        "",
        "operator commands (now python -m ops COMMAND; these names forward there):",
        *(f"  {name:<{width}}{COMMAND_HELP[name]}" for name in OPERATING),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    if not argv:  # a usage error: the usage goes to stderr, as argparse's would
        print(usage(), file=sys.stderr)
        return 2
    command = argv[0]
    if command in PACKAGING:
        from lambda_pkg import cli

        return cli.main(argv)
    if command in OPERATING:
        from ops.__main__ import main as ops_main

        print(MOVED_NOTE.format(command=command), file=sys.stderr)
        return ops_main(argv)
    commands = ", ".join([*PACKAGING, *sorted(OPERATING)])
    print(
        f"error: unknown command {command!r}: use one of {commands} (python -m lambda_pkg --help)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
