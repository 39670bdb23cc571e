"""An execution environment's lifecycle without PyPI: a stand-in for the runtime
interface client (a few lines that speak the Runtime API, as awslambdaric does) in a
runtime directory, and this interpreter as the function's Python. The real client is
exercised by tests/e2e/test_localcloud*.py."""

from __future__ import annotations

import json
import sys
import time
import uuid

import pytest

from localcloud.environment import ExecutionEnvironment
from localcloud.functions import FunctionVersion
from localcloud.registry import LoggingConfig
from localcloud.runtimes import LambdaRuntime
from localcloud.spawner import Spawner

# `python -m awslambdaric <handler>` with AWS_LAMBDA_RUNTIME_API: the loop every runtime
# client runs (next -> handler -> response or error).
FAKE_RIC = r"""
import http.client, importlib, json, os, sys, traceback
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
module, name = sys.argv[1].rsplit(".", 1)
try:
    handler = getattr(importlib.import_module(module), name)
except Exception as exc:
    conn = http.client.HTTPConnection(api)
    body = json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": str(exc)})
    conn.request("POST", "/2018-06-01/runtime/init/error", body)
    conn.getresponse().read()
    sys.exit(1)
while True:
    conn = http.client.HTTPConnection(api)
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    response = conn.getresponse()
    event = json.loads(response.read())
    rid = response.getheader("Lambda-Runtime-Aws-Request-Id")
    try:
        path, body = "response", json.dumps(handler(event, None))
    except Exception as exc:
        doc = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        path, body = "error", json.dumps(doc)
    conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/{path}", body)
    conn.getresponse().read()
"""

HANDLER = """
import os, time
print("init line", flush=True)
def handler(event, context):
    print("event", event, flush=True)
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "boom" in event:
        raise RuntimeError(event["boom"])
    return {"endpoint": os.environ["AWS_ENDPOINT_URL"], "task": os.environ["LAMBDA_TASK_ROOT"]}
"""


@pytest.fixture
def spawner():
    spawner = Spawner()
    yield spawner
    spawner.close()


def _environment(tmp_path, spawner, *, timeout=5, handler="h.handler", init_limit=10.0):
    code = tmp_path / "code"
    code.mkdir(parents=True)
    (code / "h.py").write_text(HANDLER)
    runtime_dir = tmp_path / "runtime"
    (runtime_dir / "awslambdaric").mkdir(parents=True)
    (runtime_dir / "awslambdaric" / "__init__.py").write_text("")
    (runtime_dir / "awslambdaric" / "__main__.py").write_text(FAKE_RIC)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    function = FunctionVersion(
        name="fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        version="$LATEST",
        handler=handler,
        runtime=f"python{version}",
        timeout_s=timeout,
        memory_mb=256,
        variables=(("AWS_ENDPOINT_URL", "http://elsewhere"), ("X", "1")),
        layer_arns=(),
        code_sha256="x",
        architecture="x86_64",
        logging=LoggingConfig(),
        reserved_concurrency=None,
    )
    env = ExecutionEnvironment(
        function=function,
        code_dir=code,
        layer_dirs=[],
        runtime=LambdaRuntime(function.runtime, sys.executable, version, runtime_dir),
        cloud_url="http://127.0.0.1:1",
        spawner=spawner,
        tmp_root=tmp_path,
        init_limit_s=init_limit,
    )
    env.start("2026/12/02/[$LATEST]" + uuid.uuid4().hex)
    return env


def _invoke(env, event):
    return env.invoke(
        request_id=str(uuid.uuid4()),
        payload=json.dumps(event).encode(),
        invoked_arn=env.function.arn,
    )


def test_cold_then_warm(tmp_path, spawner):
    env = _environment(tmp_path, spawner)
    try:
        cold = _invoke(env, {"n": 1})
        warm = _invoke(env, {"n": 2})
    finally:
        env.stop()
    assert cold.error_type is None and warm.error_type is None
    body = json.loads(cold.payload)
    # The function's own AWS_ENDPOINT_URL cannot point it away from the local cloud.
    assert body == {"endpoint": "http://127.0.0.1:1", "task": str(tmp_path / "code")}
    assert cold.init_duration_ms is not None and warm.init_duration_ms is None
    assert [line.message for line in cold.lines] == ["init line", "event {'n': 1}"]
    assert [line.message for line in warm.lines] == ["event {'n': 2}"]
    # No bytecode in the code dir, even as root: the cache must find it as unpacked.
    assert [p.name for p in (tmp_path / "code").iterdir()] == ["h.py"]


def test_a_warm_environment_idle_longer_than_init_plus_timeout_still_runs(tmp_path, spawner):
    # GIVEN a warm environment (1 s timeout, 0.2 s init limit) left idle past both
    env = _environment(tmp_path, spawner, timeout=1, init_limit=0.2)
    try:
        assert _invoke(env, {}).error_type is None
        time.sleep(1.5)
        # WHEN it is invoked again, THEN it runs (the init limit was for the cold start)
        again = _invoke(env, {})
    finally:
        env.stop()
    assert again.error_type is None, again.payload


def test_handler_errors_timeouts_and_import_errors(tmp_path, spawner):
    env = _environment(tmp_path, spawner, timeout=1)
    try:
        failed = _invoke(env, {"boom": "no"})
        assert (failed.error_type, failed.platform_status) == ("RuntimeError", None)
        assert not env.dead  # a handler error keeps the environment
        started = time.monotonic()
        slow = _invoke(env, {"sleep": 30})
        assert time.monotonic() - started < 10
        assert (slow.error_type, slow.platform_status) == ("Sandbox.Timedout", "timeout")
        assert b"Task timed out after 1.00 seconds" in slow.payload
        assert env.dead and not env.usable()
    finally:
        env.stop()
    broken = _environment(tmp_path / "b", spawner, handler="missing.handler")
    try:
        result = _invoke(broken, {})
    finally:
        broken.stop()
    assert result.init_failed and result.error_type == "Runtime.ImportModuleError"
