"""Error types shared by every lambda_pkg command.

A UserError is something the user can fix (a bad path, an oversize package,
a missing bucket): the CLI prints its message on one line and exits 2, with no
traceback. Anything else is a bug or an outage and exits 1.
"""

import os


def debug_enabled() -> bool:
    """DEBUG=true (the switch every script and command honours): tracebacks and
    verbose AWS call logs instead of one-line errors."""
    return os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


class UserError(Exception):
    """A problem with the user's input or environment; the message says how to fix it."""

    exit_code = 2


class InternalError(Exception):
    """A failure that is not the user's fault (a tool crashed, an invariant broke)."""

    exit_code = 1
