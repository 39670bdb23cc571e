"""The backtester: deterministic, the documented fill convention, the figures, the CLI."""

import json
import math
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from backend.index import Index, Series
from backend.layout import bar_object_key
from backend.storage import encode_bars
from backend.trading import metrics
from backend.trading.backtest import main, run_backtest
from backend.trading.history import DirectorySource, HistoryError, load_history
from backend.trading.orders import Fill
from backend.trading.settings import parse_trading_config
from tests.unit.trading.helpers import bars


def write_store(root, series, *, prefix="data/test/"):
    """A local copy of data/<env>/ in the section 8 layout, written with the fetcher's
    own encoders: the year objects, then index.json."""
    updates = []
    for symbol, history in series.items():
        groups = {}
        for bar in history:
            groups.setdefault(bar_object_key(prefix, symbol, "1d", bar.timestamp), []).append(bar)
        for key, group in groups.items():
            path = root / key.removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_bars(group))
        updates.append(
            Series(
                symbol=symbol,
                interval="1d",
                first=history[0].iso_time,
                last=history[-1].iso_time,
                last_final=history[-1].iso_time,
                object_bars={k: len(g) for k, g in groups.items()},
            )
        )
    index = Index().with_updates(updates, now=datetime(2024, 6, 1, tzinfo=UTC))
    (root / "index.json").write_bytes(index.to_bytes())


def wave(n, base=100.0, period=40, amp=0.2):
    return [base * (1 + amp * math.sin(2 * math.pi * i / period)) for i in range(n)]


CONFIG = parse_trading_config(
    {
        "environment": "backtest",
        "strategyParams": {"fast": 3, "slow": 10},
        "paperSlippageBps": 10,
        "paperFeeRate": 0.001,
        # Share counts are not split-invariant (a 4:1 split quadruples them): no cap here.
        "riskLimits": {"maxPositionNotional": 1e9, "maxPositionShares": 10**9},
    }
)


def test_the_same_input_gives_the_same_bytes(tmp_path, capsys):
    write_store(tmp_path, {"AAA": bars("AAA", wave(300)), "BBB": bars("BBB", wave(300, 50, 25))})
    outputs = []
    for _ in range(2):
        assert (
            main(["--data", str(tmp_path), "--param", "fast=3", "--param", "slow=10", "--json"])
            == 0
        )
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    doc = json.loads(outputs[0])
    assert doc["orders"] > 4 and doc["trades_count"] == len(doc["trades"])
    assert doc["sharpe_convention"].startswith("daily simple returns")


def test_fills_at_the_next_bars_open_with_slippage_and_fee():
    closes = [10.0] * 10 + [11.0, 12.0, 13.0, 14.0]
    opens = [10.0] * 10 + [10.5, 11.5, 12.5, 13.5]
    history = {"AAA": bars("AAA", closes, opens=opens)}
    result = run_backtest(history, CONFIG)
    first = result.trades[0]
    # fast(3) > slow(10) first on index 10's close (11.0); sized there: floor(100000/11)
    assert first.entry_time == history["AAA"][11].iso_time
    assert first.entry_price == pytest.approx(11.5 * 1.001)
    assert first.qty == 100_000 // 11
    assert first.fees == pytest.approx(0.001 * first.qty * 11.5 * 1.001)


def test_figures_against_hand_computed_values():
    equity = [100.0, 110.0, 99.0, 120.0]
    assert metrics.max_drawdown(equity) == pytest.approx(0.1)
    returns = [0.1, -0.1, 120 / 99 - 1]
    mean = sum(returns) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert metrics.sharpe(equity) == pytest.approx(mean / sd * math.sqrt(252))
    from datetime import date

    assert metrics.cagr(100.0, 121.0, date(2020, 1, 1), date(2021, 12, 31)) == pytest.approx(
        1.21 ** (365.25 / 730) - 1
    )


def test_trades_from_fills_split_a_crossing_fill():
    fills = [
        Fill("a", 10, "X", "buy", 10, 100.0, 1.0, "t1"),
        Fill("b", 20, "X", "sell", 20, 110.0, 2.0, "t2"),  # closes 10, opens 10 short
        Fill("c", 10, "X", "buy", 10, 105.0, 0.0, "t3"),
    ]
    long, short = metrics.trades_from_fills(fills, {})
    assert (long.side, long.pnl) == ("long", pytest.approx(10 * 10 - 1.0 - 1.0))
    assert (short.side, short.pnl) == ("short", pytest.approx(10 * 5 - 1.0))


def test_a_split_in_history_is_no_trade_and_no_pnl():
    """A 4:1 split: the strategy sees a flat line (adjusted), the account 4x the shares."""
    closes = wave(200)
    raw = [c if i < 120 else c / 4 for i, c in enumerate(closes)]
    opens = [raw[i - 1] if i else raw[0] for i in range(200)]
    opens[120] = closes[119] / 4
    split = bars("AAA", raw, opens=opens, splits={120: 4.0})
    plain = bars("AAA", closes)
    a = run_backtest({"AAA": split}, CONFIG)
    b = run_backtest({"AAA": plain}, CONFIG)
    assert a.orders == b.orders
    # Whole shares: after the split an order can be sized 4x finer, so equity may differ
    # by less than a share's worth per order; a fake 75% crash would show as -75%.
    assert a.final_equity == pytest.approx(b.final_equity, rel=1e-4)


def test_unfinished_bars_are_never_used():
    history = bars("AAA", wave(100))
    from dataclasses import replace

    history[-1] = replace(history[-1], final=False)
    result = run_backtest({"AAA": history}, CONFIG)
    assert result.end == history[-2].timestamp.date().isoformat()


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'index.json'} does not exist")
    write_store(tmp_path, {"AAA": bars("AAA", wave(50))})
    assert main(["--data", str(tmp_path), "--param", "fast=30", "--param", "slow=20"]) == 2
    assert capsys.readouterr().err == (
        "error: strategyParams.fast: must be < strategyParams.slow (got 30 >= 20)\n"
    )
    assert main(["--data", str(tmp_path), "--strategy", "nope"]) == 2
    assert "strategy: unknown strategy 'nope'" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--symbols", "ZZZ"]) == 2
    assert "no 1d bars stored for ZZZ" in capsys.readouterr().err


def test_a_missing_object_named_in_the_index_is_named(tmp_path):
    write_store(tmp_path, {"AAA": bars("AAA", wave(20))})
    next(tmp_path.rglob("*.jsonl")).unlink()
    with pytest.raises(HistoryError, match="listed in the index but missing"):
        load_history(DirectorySource(tmp_path), "index.json")


def test_a_bad_line_is_one_line_naming_the_file_and_the_line(tmp_path, capsys):
    write_store(tmp_path, {"AAA": bars("AAA", wave(30))})
    path = next(tmp_path.rglob("*.jsonl"))
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace('"open":', '"open":-')  # a negative open: not a bar
    path.write_text("\n".join(lines) + "\n")
    assert main(["--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path} line 7 is not a stored bar (open must be positive")
    assert err.count("\n") == 1


def test_a_malformed_index_entry_is_named(tmp_path, capsys):
    (tmp_path / "index.json").write_text('{"version": 1, "series": {"AAA/1d": []}}')
    assert main(["--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'index.json'}: series.AAA/1d must be an object\n"
    )


def test_a_bucket_and_prefix_read_the_same_as_a_local_copy(tmp_path, capsys, monkeypatch):
    # GIVEN the same stored series in a directory and under data/test/ in a bucket
    series = {"AAA": bars("AAA", wave(300)), "BBB": bars("BBB", wave(300, 50, 25))}
    write_store(tmp_path, series)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    args = ["--param", "fast=3", "--param", "slow=10", "--json"]
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="ctb-data")
        for path in tmp_path.rglob("*"):
            if path.is_file():
                key = "data/test/" + str(path.relative_to(tmp_path))
                s3.put_object(Bucket="ctb-data", Key=key, Body=path.read_bytes())
        # WHEN both are backtested
        assert main(["--bucket", "ctb-data", "--prefix", "data/test/", *args]) == 0
        from_s3 = capsys.readouterr().out
        # a prefix that is not one: refused before any read
        assert main(["--bucket", "ctb-data", "--prefix", "data/test", *args]) == 2
        assert "--prefix 'data/test': --bucket needs the data prefix" in capsys.readouterr().err
        assert main(["--bucket", "ctb-data", "--prefix", "data/prod/", *args]) == 2
        assert "s3://ctb-data/data/prod/index.json does not exist" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), *args]) == 0
    # THEN the results are the same bytes
    assert from_s3 == capsys.readouterr().out
    assert json.loads(from_s3)["orders"] > 4
