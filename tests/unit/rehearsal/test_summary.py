"""The rehearsal's human-readable summary (infra.rehearsal.summary)."""

from __future__ import annotations

from infra.rehearsal.invoker import HandlerRun
from infra.rehearsal.run import Result, Step
from infra.rehearsal.summary import render


def test_the_invocations_header_is_plain_text():
    # GIVEN a rehearsal whose two invocations passed
    result = Result(stack="dev", steps=[Step("invoke run", ok=True, seconds=0.1)])
    result.invocations = [
        HandlerRun({"test": True}, True, result={"ok": True}, duration_ms=3.0),
        HandlerRun({}, True, result={"ok": True}, duration_ms=5.0),
    ]
    # WHEN it is rendered
    text = render(result)
    # THEN the header reads as a sentence: no stray format placeholder in it
    (header,) = [line for line in text.splitlines() if line.startswith("Invocations")]
    assert "{" not in header and "}" not in header
    assert "the real run with canned market data" in header
