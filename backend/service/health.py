"""The container health check: `python -m backend.service health`.

It reads the heartbeat file the loop writes after every iteration; it makes no AWS call,
so it is fast, and it says what the *process* is doing. Exit codes:

  1 (unhealthy: ECS replaces the task)  no heartbeat; a heartbeat older than
      max(3 x POLL_SECONDS, 180 s) (the loop is stuck); 3 or more steps in a row failed
      (a broker or AWS outage a new task may not have, or a bug: either way, restart).
  0 (healthy, status "degraded")  the kill switch is halted, or data is stale. A restart
      fixes neither: a halted kill switch stays halted in the ledger until an operator
      resumes it, and stale data is the fetcher's to fix. Failing the check would only make
      ECS restart a task in a loop while it should keep reconciling orders and marking
      equity; so these states are reported (the JSON, an ERROR log line each step) and
      alarmed on, not restarted. `--strict` makes them exit 1 for an operator's script.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_STALE_HEARTBEAT = 180.0
MAX_FAILURES = 3


@dataclass(frozen=True, slots=True)
class Health:
    status: str  # healthy | degraded | unhealthy
    problems: tuple[str, ...]
    doc: dict[str, Any]

    def exit_code(self, *, strict: bool = False) -> int:
        if self.status == "unhealthy" or (strict and self.status == "degraded"):
            return 1
        return 0


def check(path: Path, *, now: float | None = None) -> Health:
    now = time.time() if now is None else now
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Health("unhealthy", (f"no heartbeat at {path}: the loop has not run yet",), {})
    except (OSError, json.JSONDecodeError) as err:
        return Health("unhealthy", (f"heartbeat {path} unreadable: {err}",), {})
    age = now - float(beat.get("time", 0.0))
    poll = float(beat.get("poll_seconds", 60.0))
    limit = max(3 * poll, MIN_STALE_HEARTBEAT)
    doc: dict[str, Any] = {
        "heartbeat_age_seconds": round(age, 1),
        "consecutive_failures": beat.get("consecutive_failures", 0),
        "halted": bool(beat.get("halted", False)),
        "halt_reason": beat.get("halt_reason", ""),
        "stale": beat.get("stale", []),
        "last_error": beat.get("last_error", ""),
        "last_step": beat.get("last_step"),
    }
    unhealthy = []
    if age > limit:
        unhealthy.append(f"heartbeat is {age:.0f} s old (limit {limit:.0f} s): the loop is stuck")
    if int(doc["consecutive_failures"]) >= MAX_FAILURES:
        unhealthy.append(
            f"{doc['consecutive_failures']} steps failed in a row: {doc['last_error']}"
        )
    if unhealthy:
        return Health("unhealthy", tuple(unhealthy), doc)
    degraded = []
    if doc["halted"]:
        degraded.append(f"kill switch halted: {doc['halt_reason']}")
    if doc["stale"]:
        degraded.append(f"stale data: {', '.join(doc['stale'])}")
    return Health("degraded" if degraded else "healthy", tuple(degraded), doc)
