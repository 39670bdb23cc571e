"""The two errors a stack's config can raise (kept apart so every module here can use them).

Both subclass `pulumi.RunError`: the Python language host prints a RunError's message
alone, without the traceback a user cannot act on. The command-line tools print them
as one `error: ...` line and exit 2.
"""

from __future__ import annotations

import pulumi


class ConfigError(pulumi.RunError):
    """One or more config values are invalid; the message names each key."""


class StackFileError(ConfigError):
    """A stack's YAML cannot be read; the message names the file and what to fix."""
