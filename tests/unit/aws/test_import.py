"""Importing the handler must stay cheap: no yfinance, pandas or boto3 until used."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json, sys
import aws.market_data_fetcher
heavy = ("yfinance", "pandas", "numpy", "boto3", "botocore", "requests", "exchange_calendars",
         "backend.fetcher", "backend.run", "concurrent.futures")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def test_importing_the_handler_loads_no_heavy_module(tmp_path):
    # GIVEN yfinance, pandas and the calendar library "installed" as modules that fail
    # loudly when imported
    for name in ("yfinance", "pandas", "exchange_calendars"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} was imported')\n")
    # WHEN the handler module is imported in a fresh interpreter
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{tmp_path}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # THEN it imports, and none of them was loaded, nor the fetch path (loaded when a
    # fetch runs, so test mode's cold start skips it)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_handler_sizes_its_connection_pool_for_the_fetch_threads():
    from aws import market_data_fetcher
    from backend import fetcher

    assert market_data_fetcher.FETCH_THREADS == fetcher.MAX_WORKERS
