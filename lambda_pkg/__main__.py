"""`python -m lambda_pkg <command>`: routes each command to the module that owns it.

build, verify                                  -> lambda_pkg.cli       (packaging)
upload, rollback, status, invoke, coldstarts   -> ops.cli   (operating)
"""

import sys

PACKAGING = {"build", "verify"}
OPERATING = {"upload", "rollback", "status", "invoke", "coldstarts"}
USAGE = (
    "usage: python -m lambda_pkg {build,verify,upload,rollback,status,invoke,coldstarts} ...\n"
    "       python -m lambda_pkg COMMAND --help"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0
    if not argv:  # a usage error: the usage goes to stderr, as argparse's would
        print(USAGE, file=sys.stderr)
        return 2
    command = argv[0]
    if command in PACKAGING:
        from lambda_pkg import cli

        return cli.main(argv)
    if command in OPERATING:
        from ops import cli as ops_cli

        return ops_cli.main(argv)
    commands = ", ".join(sorted(PACKAGING) + sorted(OPERATING))
    print(
        f"error: unknown command {command!r}: use one of {commands} (python -m lambda_pkg --help)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
