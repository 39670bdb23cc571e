"""Error types and error reporting shared by every lambda_pkg command.

A UserError is something the user can fix (a bad path, an oversize package,
a missing bucket): the CLI prints its message on one line and exits 2, with no
traceback. Anything else is a bug or an outage and exits 1, also with one line;
DEBUG=true adds its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sized
from typing import NoReturn

DEBUG_HINT = "(run with DEBUG=true for details)"


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


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the usage plus a message and exits; every lambda_pkg command
    wants one line and exit 2, so a bad command line is a UserError."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see --help)")


def one_line(text: object, limit: int = 500) -> str:
    """The text with its whitespace (newlines too) collapsed, cut at `limit` characters."""
    return " ".join(str(text).split())[:limit]


def and_more(items: Sized) -> str:
    """The suffix of a message that names the first of several problems."""
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def describe(exc: BaseException) -> str:
    """An unexpected exception as 'TypeName: message', on one line."""
    message = one_line(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def report_failure(message: str, code: int, *, unexpected: bool = False) -> int:
    """Print a failed command's one line, `error: <message>`, on stderr; return `code`.

    Call it from the `except` block. Under DEBUG=true, a failure that is not a user
    error (code != 2) prints its traceback first. Without DEBUG, an unexpected one
    (a bug, an AWS error no rule knows) ends with a hint to set it.
    """
    if code != UserError.exit_code and debug_enabled():
        traceback.print_exc()
    elif unexpected:
        message = f"{message} {DEBUG_HINT}"
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def run_reporting(command: Callable[[], int]) -> int:
    """Run a command (its parsing too) and return its exit code; whatever it raises
    becomes one line on stderr and the exit code that says what kind of failure it
    was: 2 for the user's to fix, 130 for Ctrl-C, 1 for the rest."""
    try:
        return command()
    except UserError as exc:
        return report_failure(str(exc), UserError.exit_code)
    except InternalError as exc:
        return report_failure(str(exc) or "InternalError", InternalError.exit_code)
    except KeyboardInterrupt:
        return report_failure("interrupted", 130)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except Exception as exc:
        return report_failure(describe(exc), 1, unexpected=True)
