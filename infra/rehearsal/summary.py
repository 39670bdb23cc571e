"""The human-readable summary printed at the end of a rehearsal."""

from __future__ import annotations

import json

from infra.rehearsal.run import Result, judge

_MAX_LISTED = 8


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.2f} MB"


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MiB"


def _steps(result: Result) -> list[str]:
    status = "PASSED" if result.ok else f"FAILED at step '{result.failed_step}'"
    lines = [f"Rehearsal of stack '{result.stack}' against emulated AWS: {status}"]
    if result.error:
        lines.append(f"  why: {result.error}")
    lines += ["", "Steps"]
    for step in result.steps:
        mark = "ok  " if step.ok else "FAIL"
        lines.append(f"  {mark} {step.name:<12} {step.seconds:6.2f} s  {step.detail}")
    lines.append(f"  total {result.seconds:.2f} s")
    return lines


def _package(result: Result) -> list[str]:
    p = result.package
    if not p:
        return []
    unzipped = p.unzipped_size + p.layer_unzipped_size
    return [
        "",
        "Package",
        f"  sha256   {p.sha256}  (CodeSha256 {p.sha256_b64})",
        f"  zipped   {_mib(p.size)} = {p.zipped_pct}% of the "
        f"{_mib(p.zipped_limit)} direct-upload limit"
        + (" (over it: fine, this stack deploys from S3)" if p.zipped_pct > 100 else ""),
        f"  unzipped {_mb(unzipped)} = {p.unzipped_pct}% of the "
        f"{_mb(p.unzipped_limit)} limit (function + layers)",
        f"  target   {p.runtime} / {p.architecture}",
    ]


def _resources(result: Result) -> list[str]:
    if not result.resources:
        return []
    lines = ["", f"Resources created ({len(result.resources)})"]
    lines += [f"  {r.token.split(':')[-1]:<42} {r.physical_id}" for r in result.resources]
    d = result.deployed
    if d:
        aliases = ", ".join(f"{k} -> version {v}" for k, v in d.aliases.items()) or "none"
        lines += [
            "",
            "Deployed function",
            f"  {d.function} ({d.runtime}, {d.handler})",
            f"  code    s3://{d.bucket}/{d.key} version {d.version_id}",
            f"  aliases {aliases}",
        ]
    return lines


def _invocations(result: Result) -> list[str]:
    if not result.invocations:
        return []
    lines = [
        "",
        "Invocations (the handler, run from the downloaded package; the real run with "
        "canned market data, MARKET_DATA_PROVIDER=fixture)",
    ]
    for inv in result.invocations:
        verdict = judge(inv.result) if inv.ok else None
        if not inv.ok:
            outcome = f"ERROR {inv.error}"
        elif verdict:
            outcome = "FAILED (the handler reported it)"
        else:
            outcome = "ok"
        lines.append(f"  {json.dumps(inv.event):<16} {outcome} in {inv.duration_ms:.0f} ms")
        if inv.result is not None:
            text = json.dumps(inv.result, default=str)
            lines.append(f"    -> {text[:300]}{'…' if len(text) > 300 else ''}")
    return lines


def _listed(title: str, rows: list[str]) -> list[str]:
    lines = ["", f"{title} ({len(rows)})"]
    lines += [f"  {row}" for row in rows[:_MAX_LISTED]]
    if len(rows) > _MAX_LISTED:
        lines.append(f"  … and {len(rows) - _MAX_LISTED} more")
    return lines


def _landed(result: Result) -> list[str]:
    if not result.objects:
        return []
    lines: list[str] = []
    for label, objects in result.objects.items():
        rows = [f"{o['key']}  ({o['size']:,} bytes)" for o in objects]
        lines += _listed(f"Objects under {label}/", rows)
    rows = []
    for item in result.items:
        keys = {k: item[k] for k in ("pk", "sk") if k in item}
        rows.append(f"{json.dumps(keys, default=str)} + {len(item) - len(keys)} attributes")
    return lines + _listed("DynamoDB items", rows)


def _service(result: Result) -> list[str]:
    lines: list[str] = []
    image = result.image
    if image:
        lines += ["", "Strategy service image", f"  digest   {image['digest']}"]
        lines.append(f"  source   {image['source']}")
        if image.get("image_uri"):
            lines.append(f"  task     {image['task_definition']} runs {image['image_uri']}")
        for layer in image.get("layers") or []:
            lines.append(f"  layer    {layer['role']:<13} {layer['digest']}  {_mib(layer['size'])}")
    trades = result.strategy
    if trades:
        equity = trades.get("equity")
        shown = f"{equity:,.2f}" if isinstance(equity, (int, float)) else "none yet"
        by_status = ", ".join(f"{k} {v}" for k, v in (trades.get("orders_by_status") or {}).items())
        lines += [
            "",
            "Trades (the service from the image's layers: --replay, then summary)",
            f"  orders    {trades.get('orders', 0)}" + (f" ({by_status})" if by_status else ""),
            f"  fills     {trades.get('fills', 0)}",
            f"  equity    {shown}"
            + (f" on {trades['equity_day']}" if trades.get("equity_day") else ""),
            f"  cash      {trades['cash']:,.2f}"
            if isinstance(trades.get("cash"), (int, float))
            else "  cash      none yet",
        ]
        positions = trades.get("positions") or []
        if not positions:
            lines.append("  positions none open")
        for p in positions:
            lines.append(
                f"  position  {p['symbol']:<6} {p['qty']} @ {p['avg_price']:,.2f}"
                f" (realised {p['realised_pnl']:,.2f})"
            )
        if trades.get("halted"):
            lines.append(f"  HALTED    {trades.get('halt_reason')}")
    return lines


def render(result: Result) -> str:
    lines = [
        *_steps(result),
        *_package(result),
        *_resources(result),
        *_invocations(result),
        *_landed(result),
        *_service(result),
    ]
    if result.notes:
        lines += ["", "Notes", *(f"  - {note}" for note in result.notes)]
    if result.ok and result.stack != "local":
        lines += ["", *_next(result)]
    return "\n".join(lines)


def _next(result: Result) -> list[str]:
    deploy, needs = "scripts/deploy.sh --stack", "(needs the Pulumi CLI and AWS credentials)"
    owners = [o for o in result.owner_stacks if o != result.stack]
    if result.stack in result.owner_stacks or not owners:
        return [f"Next: deploy to AWS with {deploy} {result.stack} --preview, then without "
                f"--preview {needs}."]  # fmt: skip
    # A non-owner stack adopts the bucket its owner creates: on a fresh account the
    # owner must be deployed first, or this stack's getBucket finds nothing.
    return [f"Next: on a fresh account, deploy the bucket's owner first: {deploy} {owners[0]} "
            f"--preview, then without --preview; then this stack the same way with {deploy} "
            f"{result.stack} {needs}."]  # fmt: skip
