import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from localcloud.emulator import moto_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_moto_server_serves_s3_and_stops_afterwards():
    # GIVEN a running emulator
    with moto_server() as url:
        s3 = boto3.client("s3", endpoint_url=url)
        # WHEN a bucket is created through real HTTP
        s3.create_bucket(Bucket="probe")
        # THEN it is listed
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]
    # AND the server is gone once the block exits
    s3 = boto3.client("s3", endpoint_url=url)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        s3.list_buckets()


def test_a_failure_inside_the_block_still_stops_it():
    with pytest.raises(RuntimeError, match="boom"), moto_server() as url:
        raise RuntimeError("boom")
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        boto3.client("s3", endpoint_url=url).list_buckets()


_HOLDER = """
import sys, time
from localcloud.emulator import moto_server
with moto_server() as url:
    print(url, flush=True)
    time.sleep(120)
"""


def _kill_orphan(url: str) -> None:
    """Test hygiene after a failure: end the moto_server serving url, if it survived."""
    port = url.rsplit(":", 1)[1]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().split(b"\0")
            if any(b"moto_server" in a for a in argv) and port.encode() in argv:
                os.kill(int(cmdline.parent.name), signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_it_dies_with_a_process_killed_outright(tmp_path):
    # GIVEN a process holding a running emulator
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    url = ""
    try:
        url = holder.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        # WHEN that process is killed with no chance to clean up (SIGKILL, an OOM kill)
        holder.kill()
        holder.wait()
        # THEN the emulator goes too (the kernel's parent-death signal), not orphaned
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)  # noqa: S310
            except (urllib.error.URLError, ConnectionError):
                url = ""
                return
            time.sleep(0.2)
        pytest.fail(f"moto_server at {url} outlived the process that started it")
    finally:
        if holder.poll() is None:
            holder.kill()
        if url:
            _kill_orphan(url)


def test_a_port_taken_before_moto_binds_it_is_retried(monkeypatch):
    # GIVEN a "free" port that someone else takes before moto_server can bind it
    from localcloud import emulator

    real_free_port = emulator.free_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(emulator, "free_port", lambda: next(ports, None) or real_free_port())
        # WHEN the emulator starts
        with moto_server() as url:
            # THEN it runs on another port, and it is ours that answers
            assert not url.endswith(f":{taken.getsockname()[1]}")
            assert boto3.client("s3", endpoint_url=url).list_buckets()["Buckets"] == []
