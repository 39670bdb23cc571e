"""The subprocess invoker: the handler runs from the unzipped package in a fresh,
isolated interpreter, sees only the function's environment, and its failures
come back as readable errors."""

from __future__ import annotations

import io
import os
import sys
import zipfile

import pytest

from infra.rehearsal import invoker
from infra.rehearsal.run import judge
from localcloud.code import CodeError, extract
from tests.unit.rehearsal.helpers import make_zip, python_version_of

HANDLER = """\
import json, os
def handler(event, context):
    if event.get("boom"):
        raise RuntimeError("exploded on purpose")
    print(json.dumps({"level": "INFO", "msg": "hello"}))
    import boto3  # from the runtime dir, like Lambda's /var/runtime
    return {
        "ok": True,
        "event": event,
        "env": {k: os.environ.get(k) for k in ("ENVIRONMENT", "AWS_ENDPOINT_URL", "LEAK")},
        "boto3": boto3.__name__,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function": context.function_name,
    }
"""


@pytest.fixture
def task(tmp_path):
    return extract(make_zip({"aws/__init__.py": "", "aws/fn.py": HANDLER}), tmp_path / "t")


def _env(**variables):
    return invoker.function_env(
        variables,
        endpoint_url="http://127.0.0.1:9",
        function_name="fn-dev",
        memory=256,
        region="us-east-1",
    )


def _invoke(task, tmp_path, event, env=None):
    return invoker.invoke(
        python=sys.executable,
        task_dir=task,
        runtime=str(invoker.runtime_dir(tmp_path / "runtime")),
        handler="aws.fn.handler",
        event=event,
        env=env or _env(ENVIRONMENT="dev"),
        timeout=30,
    )


def test_handler_runs_with_the_function_environment(task, tmp_path, monkeypatch):
    # GIVEN something in the caller's environment that the function must not see
    monkeypatch.setenv("LEAK", "caller-secret")
    # WHEN the handler is invoked
    inv = _invoke(task, tmp_path, {"test": True})
    # THEN it ran, with the function's variables and the emulator endpoint only
    assert inv.ok, inv.error
    assert inv.result["event"] == {"test": True}
    assert inv.result["env"] == {
        "ENVIRONMENT": "dev",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "LEAK": None,
    }
    assert inv.result["boto3"] == "boto3"
    assert inv.result["function"] == "fn-dev"
    assert 0 < inv.result["remaining_ms"] <= 30_000
    assert any('"msg": "hello"' in line for line in inv.log_tail)


def test_handler_exception_comes_back_as_an_error(task, tmp_path):
    inv = _invoke(task, tmp_path, {"boom": True})
    assert not inv.ok
    assert inv.error == "RuntimeError: exploded on purpose"
    assert any("exploded on purpose" in line for line in inv.log_tail)


def test_missing_handler_module_is_an_error(task, tmp_path):
    inv = invoker.invoke(
        python=sys.executable, task_dir=task, runtime=str(tmp_path), handler="nope.handler",
        event={}, env=_env(), timeout=30,
    )  # fmt: skip
    assert not inv.ok
    assert inv.error.startswith("ModuleNotFoundError")


def test_function_variables_cannot_redirect_the_endpoint():
    env = _env(AWS_ENDPOINT_URL="https://s3.amazonaws.com", AWS_ACCESS_KEY_ID="AKIA...")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"


def test_package_entries_may_not_escape_the_task_dir(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.py", "x = 1")
    with pytest.raises(CodeError, match="escapes the code directory"):
        extract(buf.getvalue(), tmp_path / "t")
    assert not (tmp_path / "evil.py").exists()


def test_unknown_runtime_falls_back_to_this_interpreter():
    assert invoker.runtime_python("nodejs20.x") == (sys.executable, False)


def test_this_interpreters_version_is_found_exactly():
    runtime = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert invoker.runtime_python(runtime)[1] is True


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        ({"ok": True, "status": "ok"}, False),
        ({"ok": False, "checks": []}, True),
        ({"statusCode": 500, "body": "x"}, True),
        ({"statusCode": 200}, False),
        ({"status": "error"}, True),
        ("plain string", False),
    ],
)
def test_judge_reads_failure_in_a_returned_result(result, failed):
    assert (judge(result) is not None) is failed


def test_layers_come_after_the_package_and_before_the_runtime(tmp_path):
    # GIVEN a handler that imports a module shipped only in a layer (under python/)
    task = extract(
        make_zip({"fn.py": "import dep\ndef handler(e, c):\n    return {'dep': dep.WHERE}\n"}),
        tmp_path / "task",
    )
    layer = extract(make_zip({"python/dep.py": "WHERE = 'layer'\n"}), tmp_path / "opt0")
    runtime = invoker.runtime_dir(tmp_path / "runtime")
    # WHEN it is invoked with the layer on the search path, as the rehearsal passes it
    inv = invoker.invoke(
        python=sys.executable, task_dir=task, handler="fn.handler", event={}, env=_env(),
        runtime=os.pathsep.join([str(layer / "python"), str(runtime)]), timeout=30,
    )  # fmt: skip
    # THEN the layer's module was found
    assert inv.ok, inv.error
    assert inv.result == {"dep": "layer"}


PROBE = """\
import importlib, sys
def handler(event, context):
    found = {}
    for name in ("pytest", "yaml", "moto", "pulumi", "boto3"):
        try:
            found[name] = importlib.import_module(name).__file__
        except ImportError:
            found[name] = None
    return {"path": sys.path, "isolated": sys.flags.isolated, "no_site": sys.flags.no_site,
            "found": found, "version": list(sys.version_info[:2])}
"""


def test_the_handler_sees_only_its_package_and_the_runtime_dir(tmp_path):
    # GIVEN a handler that looks around: this venv has pytest, yaml, moto and pulumi
    task = extract(make_zip({"probe.py": PROBE}), tmp_path / "task")
    runtime = invoker.runtime_dir(tmp_path / "runtime")
    # WHEN it is invoked as the rehearsal invokes the deployed function
    inv = invoker.invoke(
        python=sys.executable, task_dir=task, runtime=str(runtime), handler="probe.handler",
        event={}, env=_env(), timeout=30,
    )  # fmt: skip
    assert inv.ok, inv.error
    # THEN no site-packages is on its path: only the package, the runtime dir, the stdlib
    assert inv.result["isolated"] == 1 and inv.result["no_site"] == 1
    assert inv.result["path"][:2] == [str(task), str(runtime)]
    assert not [p for p in inv.result["path"] if "site-packages" in p]
    # AND nothing of this venv leaks in but the runtime's boto3 (and what it needs)
    found = inv.result["found"]
    assert {k: found[k] for k in ("pytest", "yaml", "moto", "pulumi")} == dict.fromkeys(
        ("pytest", "yaml", "moto", "pulumi")
    )
    assert found["boto3"].startswith(str(runtime))


def test_the_lambda_runtime_version_is_used_when_installed():
    # The Lambda runtime is python3.12: when this machine has it, the handler runs on it.
    from lambda_pkg.interpreters import find_interpreter as find_for_version

    if find_for_version("3.12") is None:
        pytest.skip("no Python 3.12 on this machine")
    python, exact = invoker.runtime_python("python3.12")
    assert exact is True
    assert python_version_of(python) == (3, 12)


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (
            {"ok": False, "mode": "test", "checks": [
                {"name": "settings", "status": "ok", "detail": "fine"},
                {"name": "provider", "status": "error", "detail": "yfinance not in the package"},
            ]},
            "failed checks: provider: yfinance not in the package",
        ),
        (
            {"ok": False, "status": "partial", "results": [
                {"symbol": "SPY", "status": "ok"},
                {"symbol": "QQQ", "status": "failed", "reason": "no_data", "error": "empty"},
            ]},
            "failed: QQQ: empty",
        ),
        ({"ok": False, "error": "bad_event", "message": "unknown key"}, "unknown key"),
    ],
    ids=["health-check", "partial-fetch", "bad-event"],
)  # fmt: skip
def test_a_reported_failure_is_said_shortly(result, reason):
    # The reason names what failed, not the handler's whole report.
    assert judge(result) == reason


def test_the_interpreter_is_the_packagers_find_or_this_one(tmp_path, monkeypatch):
    # GIVEN a runtime of another version than this interpreter's, which the packager's
    # finder does not find, and a `pythonX.Y` on PATH that only claims to be it
    version = f"3.{sys.version_info[1] + 1}"
    impostor = tmp_path / f"python{version}"
    impostor.write_text(f"#!/bin/sh\necho {version}\n")
    impostor.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(invoker, "find_for_version", lambda _version: None)
    # WHEN an interpreter is looked for
    found = invoker.runtime_python(f"python{version}")
    # THEN no second search second-guesses the finder: this interpreter, not exact
    assert found == (sys.executable, False)


def test_the_packagers_interpreter_is_used_as_found(monkeypatch):
    from lambda_pkg.interpreters import Interpreter

    asked: list[str] = []

    def finder(version: str) -> Interpreter:
        asked.append(version)
        return Interpreter(path="/opt/py/bin/python3.12", version="3.12.9", cache_tag="", magic="")

    monkeypatch.setattr(invoker, "find_for_version", finder)
    assert invoker.runtime_python("python3.12") == ("/opt/py/bin/python3.12", True)
    assert asked == ["3.12"]
