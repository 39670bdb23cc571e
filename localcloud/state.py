"""Where a running local cloud is recorded: `<state dir>/state.json`.

`up` reads it to find a cloud that is already running, `status`, `down` and `fire`
to reach it. The daemon writes it (temp file + os.replace, so a reader never sees half
a file) once both of its ports answer, and removes it on the way out.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
# The project's build cache: beside lambda_pkg's artifacts, ignored by git.
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".build" / "localcloud"


@dataclass(frozen=True)
class CloudState:
    pid: int  # the daemon (`python -m localcloud serve`), leader of its process group
    port: int  # the front: AWS_ENDPOINT_URL
    moto_port: int  # moto_server behind it
    token: str  # random per start: proves that whatever answers on `port` is this cloud
    region: str
    started_at: float  # epoch seconds
    state_dir: str
    tick_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"


class StateError(ValueError):
    """The state file exists but cannot be read: it names the file."""


def default_state_dir() -> Path:
    return DEFAULT_ROOT / "run"


def default_cache_dir() -> Path:
    """Lambda runtimes and unpacked code, shared by every state dir (content-addressed)."""
    return DEFAULT_ROOT / "cache"


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def write_json(path: Path, doc: Any, *, indent: int = 2) -> None:
    """`doc` as JSON at `path`, whole or not at all: written to a temp file beside it,
    then os.replace'd over it, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=indent, sort_keys=True, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_state(state: CloudState) -> None:
    write_json(state_path(Path(state.state_dir)), asdict(state))


def read_state(state_dir: Path) -> CloudState | None:
    """The recorded cloud, or None when there is no state file."""
    path = state_path(state_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: unreadable ({exc}); remove it if no local cloud runs") from None
    try:
        return CloudState(
            pid=int(raw["pid"]),
            port=int(raw["port"]),
            moto_port=int(raw["moto_port"]),
            token=str(raw["token"]),
            region=str(raw["region"]),
            started_at=float(raw["started_at"]),
            state_dir=str(raw["state_dir"]),
            tick_seconds=None if raw.get("tick_seconds") is None else float(raw["tick_seconds"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(
            f"{path}: missing or bad field {exc}; remove it if no local cloud runs"
        ) from None


def remove_state(state_dir: Path, *, token: str | None = None) -> None:
    """Remove the state file; with `token`, only if it still records that cloud."""
    if token is not None:
        try:
            current = read_state(state_dir)
        except StateError:
            return
        if current is None or current.token != token:
            return
    state_path(state_dir).unlink(missing_ok=True)
