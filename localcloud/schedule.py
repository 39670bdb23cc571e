"""EventBridge's schedule, which moto records but never runs: fire a rule's Lambda
targets as EventBridge does, asynchronously (InvocationType Event), with the
scheduled-event envelope, or with the target's Input / InputPath / InputTransformer.

`fire()` runs once (`python -m localcloud fire RULE`); `Ticker` fires every enabled
scheduled rule once per tick (`up --tick-seconds N`): a compressed clock, where one
tick stands for one period of every schedule, whatever its rate or cron says.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[^:]+(:[^:]+)?$")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


class RuleError(ValueError):
    """The rule does not exist (or cannot be read); the message says which."""


@dataclass(frozen=True)
class FiredTarget:
    target_id: str
    arn: str
    outcome: str  # "invoked", or why not
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "invoked"


def scheduled_event(rule_arn: str, now: datetime) -> dict[str, Any]:
    parts = rule_arn.split(":")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": parts[4],
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": parts[3],
        "resources": [rule_arn],
        "detail": {},
    }


def json_path(doc: Any, path: str) -> Any:
    """EventBridge's InputPath subset: `$`, `$.a.b`, `$.list[0]`."""
    if path.strip() == "$":
        return doc
    if not path.startswith("$."):
        raise ValueError(f"InputPath {path!r}: only $ and $.field paths are supported")
    value = doc
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path[2:]):
        if part.startswith("["):
            value = value[int(part[1:-1])] if isinstance(value, list) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def target_input(target: dict[str, Any], event: dict[str, Any], rule_name: str) -> bytes:
    if target.get("Input") is not None:
        return str(target["Input"]).encode()
    if target.get("InputPath"):
        return json.dumps(json_path(event, str(target["InputPath"]))).encode()
    transformer = target.get("InputTransformer")
    if transformer:
        values = {
            name: json_path(event, str(path))
            for name, path in (transformer.get("InputPathsMap") or {}).items()
        }
        values |= {
            "aws.events.rule-arn": event["resources"][0],
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": event["time"],
            "aws.events.event": event,
            "aws.events.event.json": event,
        }

        def fill(match: re.Match[str]) -> str:
            if match[1] not in values:
                return match[0]
            value = values[match[1]]
            return value if isinstance(value, str) else json.dumps(value)

        return _PLACEHOLDER.sub(fill, str(transformer.get("InputTemplate", ""))).encode()
    return json.dumps(event).encode()


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def fire(
    rule: str,
    *,
    events: Any,
    lam: Any,
    bus: str = "default",
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[FiredTarget]]:
    """Invoke the rule's Lambda targets once: (the rule, what happened per target)."""
    try:
        described: dict[str, Any] = events.describe_rule(Name=rule, EventBusName=bus)
        targets: list[dict[str, Any]] = []
        params = {"Rule": rule, "EventBusName": bus}
        while True:
            page = events.list_targets_by_rule(**params)
            targets += page.get("Targets", [])
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
    except Exception as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            raise RuleError(f"rule {rule!r} not found on event bus {bus!r}") from None
        raise
    event = scheduled_event(str(described["Arn"]), now or datetime.now(UTC))
    fired = []
    for target in targets:
        arn, target_id = str(target.get("Arn", "")), str(target.get("Id", ""))
        if not _LAMBDA_ARN.match(arn):
            fired.append(FiredTarget(target_id, arn, "skipped: only Lambda targets are fired"))
            continue
        try:
            payload = target_input(target, event, rule)
            answer = lam.invoke(FunctionName=arn, InvocationType="Event", Payload=payload)
        except Exception as exc:
            fired.append(FiredTarget(target_id, arn, f"failed: {exc}"))
            continue
        request_id = answer.get("ResponseMetadata", {}).get("RequestId")
        fired.append(FiredTarget(target_id, arn, "invoked", request_id))
    return described, fired


def scheduled_rules(events: Any, bus: str = "default") -> list[str]:
    """The enabled rules with a schedule expression on the bus."""
    names, params = [], {"EventBusName": bus}
    while True:
        page = events.list_rules(**params)
        names += [
            str(r["Name"])
            for r in page.get("Rules", [])
            if r.get("ScheduleExpression") and r.get("State", "ENABLED") == "ENABLED"
        ]
        if not page.get("NextToken"):
            return names
        params["NextToken"] = page["NextToken"]


class Ticker:
    """Fire every enabled scheduled rule once every `seconds` (in a daemon thread)."""

    def __init__(
        self, seconds: float, *, events: Any, lam: Any, log: Callable[[str], None]
    ) -> None:
        self.seconds = seconds
        self._events, self._lam, self._log = events, lam, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="localcloud-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                for rule in scheduled_rules(self._events):
                    _, fired = fire(rule, events=self._events, lam=self._lam)
                    for target in fired:
                        self._log(f"tick: {rule} -> {target.arn}: {target.outcome}")
            except Exception as exc:  # keep ticking; say why this tick failed
                self._log(f"tick failed: {exc}")
