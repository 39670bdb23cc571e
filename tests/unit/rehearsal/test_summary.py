"""The rehearsal's human-readable summary (infra.rehearsal.summary)."""

from __future__ import annotations

from infra.rehearsal.invoker import HandlerRun
from infra.rehearsal.run import Deployed, Result, Step
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


def _passed(stack: str, owners: list[str]) -> Result:
    deployed = Deployed("fn", "bkt", "lambda/dev/pkg.zip", "v1", "abc=", {"live": "1"}, "py", "h")
    return Result(stack=stack, deployed=deployed, owner_stacks=owners)


def test_next_says_to_deploy_the_owner_stack_first():
    # GIVEN a passed rehearsal of dev, which adopts the bucket prod owns
    text = render(_passed("dev", ["prod"]))
    # THEN the next step deploys prod first, then dev
    (nxt,) = [line for line in text.splitlines() if line.startswith("Next:")]
    assert nxt.index("--stack prod --preview") < nxt.index("--stack dev")
    assert "fresh account" in nxt


def test_next_for_the_owner_stack_deploys_it_directly():
    text = render(_passed("prod", ["prod"]))
    (nxt,) = [line for line in text.splitlines() if line.startswith("Next:")]
    assert "scripts/deploy.sh --stack prod --preview" in nxt
    assert "owner first" not in nxt
