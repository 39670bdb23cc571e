"""An interrupted rehearsal leaves even when Pulumi's engine swallows the interrupt:
after UNWIND_S seconds of unwinding it exits 128 + the signal, saying why."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.unit.rehearsal.helpers import ROOT


@pytest.mark.parametrize("keep", [False, True])
def test_a_run_stuck_after_a_signal_leaves_with_its_exit_code(keep):
    # GIVEN a process whose main thread never returns after the first signal
    code = (
        "import signal, time\n"
        "import infra.rehearsal.__main__ as m\n"
        "m.UNWIND_S = 0.5\n"
        f"m._exit_if_stuck(signal.SIGINT, keep={keep})\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # THEN it leaves soon after the deadline, with Ctrl-C's exit code, saying why
    assert proc.returncode == 130, proc.stderr
    assert time.monotonic() - start < 20
    assert "still unwinding 0 s after SIGINT; leaving now" in proc.stderr
    # AND a --keep run says what an orderly stop says: the cloud and its record stay
    kept = "the local cloud keeps running and its record names what it holds"
    assert (kept in proc.stderr) is keep


def test_a_run_that_unwinds_in_time_is_not_cut_short():
    # GIVEN a signal during the run, and the run unwinding at once
    code = (
        "import os, signal, time\n"
        "import infra.rehearsal.__main__ as m\n"
        "m.UNWIND_S = 0.5\n"
        "got = []\n"
        "try:\n"
        "    with m._orderly_stop_on_signals(got):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(5)\n"
        "except m.Stopped:\n"
        "    pass\n"
        "time.sleep(1.5)\n"
        "print('still here', got)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    # THEN the watchdog was cancelled: the process outlived the deadline and exits 0
    assert proc.returncode == 0, proc.stderr
    assert "still here [15]" in proc.stdout
