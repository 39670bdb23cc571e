"""Each risk limit, with a case that passes without the limit and is stopped with it."""

from dataclasses import replace

from backend.trading.risk import Exposure, check, daily_loss_breached
from backend.trading.settings import RiskLimits

LOOSE = RiskLimits(
    max_position_shares=10**9,
    max_position_notional=1e15,
    max_gross_exposure=10.0,
    max_open_positions=500,
    max_daily_loss_pct=0.0,
    max_stale_bars=1000,
    allow_short=True,
)
BOOK = Exposure(equity=100_000.0, gross_other=0.0, open_other=0)


def run(*, limits=LOOSE, current=0, desired=100, price=10.0, book=BOOK, halted=False, behind=0):
    return check(
        current=current,
        desired=desired,
        price=price,
        limits=limits,
        exposure=book,
        halted=halted,
        bars_behind=behind,
    )


def test_loose_limits_let_the_order_through():
    assert run().target == 100
    assert run(current=100, desired=-100).target == -100


def test_max_position_shares_clips():
    assert run(limits=replace(LOOSE, max_position_shares=60)).target == 60
    assert run(limits=replace(LOOSE, max_position_shares=60)).clipped == ("max_position_shares",)


def test_max_position_notional_clips():
    verdict = run(limits=replace(LOOSE, max_position_notional=555.0), price=10.0)
    assert verdict.target == 55 and "max_position_notional" in verdict.clipped


def test_max_gross_exposure_clips_to_the_room_left():
    book = Exposure(equity=10_000.0, gross_other=9_500.0, open_other=1)
    assert run(book=book).target == 100  # loose: 10x equity
    verdict = run(limits=replace(LOOSE, max_gross_exposure=1.0), book=book)
    assert verdict.target == 50 and verdict.clipped == ("max_gross_exposure",)


def test_max_open_positions_refuses_a_new_position_but_not_a_bigger_one():
    book = Exposure(equity=100_000.0, gross_other=0.0, open_other=3)
    limits = replace(LOOSE, max_open_positions=3)
    assert run(book=book).target == 100
    assert run(limits=limits, book=book).refused == "max_open_positions"
    assert run(limits=limits, book=book, current=50, desired=100).target == 100


def test_stale_data_refuses_everything_even_exits():
    limits = replace(LOOSE, max_stale_bars=1)
    assert run(limits=limits, behind=1).target == 100
    assert run(limits=limits, behind=2).refused == "stale_data"
    assert run(limits=limits, behind=2, current=100, desired=0).refused == "stale_data"


def test_no_short_clips_a_sell_at_flat():
    limits = replace(LOOSE, allow_short=False)
    assert run(current=100, desired=-100).target == -100
    verdict = run(limits=limits, current=100, desired=-100)
    assert verdict.target == 0 and verdict.clipped == ("no_short",)
    assert run(limits=limits, current=0, desired=-100).refused == "no_short"


def test_halted_kill_switch_allows_only_reductions():
    assert run(halted=True).refused == "kill_switch"
    assert run(halted=True, current=100, desired=200).refused == "kill_switch"
    assert run(halted=True, current=100, desired=-100).target == 0  # exit, no new short
    assert run(halted=True, current=100, desired=40).target == 40


def test_reductions_are_never_clipped_by_size_limits():
    tight = replace(LOOSE, max_position_shares=10, max_position_notional=1.0)
    assert run(limits=tight, current=500, desired=200).target == 200


def test_daily_loss_breached():
    assert not daily_loss_breached(96_000, 100_000, 5.0)
    assert daily_loss_breached(94_999, 100_000, 5.0)
    assert not daily_loss_breached(50_000, 100_000, 0.0)  # 0 switches it off
