"""The local cloud's process (`python -m localcloud serve`, started in the background by
`up`): moto_server, the front before it, the function runner, the long-running tasks
(localcloud.tasks) and the optional ticker.

It records itself in the state file only once the front answers, and on SIGTERM,
SIGINT or SIGHUP stops in order: no new requests, every task stopped (SIGTERM), every
execution environment killed, moto_server stopped, the state file removed. moto_server,
the tasks and the environments carry a parent-death signal, so even a SIGKILL of this
process leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from localcloud.control import CloudSettings
from localcloud.emulator import EMULATOR_ENV, moto_server
from localcloud.front import FrontServer
from localcloud.registry import CodeRegistry
from localcloud.runner import FunctionRunner, RunnerSettings
from localcloud.schedule import Ticker
from localcloud.state import CloudState, remove_state, write_state
from localcloud.tasks import Supervisor


def log(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    print(f"{stamp} {message}", file=sys.stderr, flush=True)


def clients_for(url: str, region: str) -> Callable[[str], Any]:
    session = boto3.session.Session(
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=EMULATOR_ENV["AWS_SESSION_TOKEN"],
        region_name=region,
    )
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=32,
        read_timeout=120,
    )
    made = {
        name: session.client(name, endpoint_url=url, config=config)
        for name in ("lambda", "s3", "logs", "events")
    }
    return lambda name: made[name]


def serve(opts: CloudSettings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    started = time.time()
    with moto_server(log_path=opts.state_dir / "moto.log") as moto_url:
        moto_port = int(urlsplit(moto_url).port or 0)
        to_moto = clients_for(moto_url, opts.region)
        registry = CodeRegistry(opts.cache_dir / "zips")
        try:
            front = FrontServer(
                opts.port,
                moto_port=moto_port,
                registry=registry,
                status=lambda: {},
                log=log,
            )
        except OSError as exc:
            log(f"error: cannot listen on 127.0.0.1:{opts.port}: {exc.strerror}")
            return 2
        url = f"http://127.0.0.1:{front.port}"
        runner = FunctionRunner(
            RunnerSettings(
                cloud_url=url,
                cache_dir=opts.cache_dir,
                idle_seconds=opts.idle_seconds,
                max_environments=opts.max_environments,
                log=log,
            ),
            registry=registry,
            clients=to_moto,
        )
        state = CloudState(
            pid=os.getpid(),
            port=front.port,
            moto_port=moto_port,
            token=token,
            region=opts.region,
            started_at=started,
            state_dir=str(opts.state_dir),
            tick_seconds=opts.tick_seconds,
        )
        front.runner = runner
        tasks = Supervisor(opts.state_dir, logs=to_moto("logs"), log=log)
        front.status = lambda: {
            "token": token,
            "pid": state.pid,
            "url": url,
            "moto_url": moto_url,
            "uptime_s": round(time.time() - started, 1),
            "tick_seconds": opts.tick_seconds,
            "environments": runner.environments(),
            "tasks": tasks.tasks(),
        }
        thread = threading.Thread(target=front.serve_forever, name="localcloud-front", daemon=True)
        thread.start()
        ticker = None
        if opts.tick_seconds:
            # Through the front, as EventBridge goes through Lambda's Invoke API.
            to_front = clients_for(url, opts.region)
            ticker = Ticker(
                opts.tick_seconds, events=to_front("events"), lam=to_front("lambda"), log=log
            )
            ticker.start()
        tasks.start()
        write_state(state)
        log(f"ready: {url} (moto_server {moto_url}, pid {state.pid})")
        try:
            stop.wait()
        finally:
            if ticker is not None:
                ticker.stop()
            front.shutdown()
            front.server_close()
            tasks.close()  # SIGTERM, as ECS stops a task; its last lines still reach moto
            runner.close()
            remove_state(opts.state_dir, token=token)
    log("stopped")
    return 0
