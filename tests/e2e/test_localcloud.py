"""The seed guide's commands, with the real AWS CLI, against a running local cloud.

One cloud for the module (`python -m localcloud up`), with what the program deploys
for the runtime (bucket, table, secret) and the bot's own code as a code-only package
built by lambda_pkg, uploaded by `ops upload`, and deployed as the program
does: CreateFunction from the pinned S3 object version, published, alias `live`.
Small probe functions cover what the bot's handler does not do on purpose (raise,
sleep past its timeout, differ between versions, record the events it gets).

Marked `network`: the first run installs the Lambda runtime (awslambdaric, boto3) for
python3.12 and AWS CLI v2 from PyPI into .build/ (then cached).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from lambda_pkg.api import ensure_artifact
from localcloud.emulator import EMULATOR_ENV
from localcloud.runner import CODE_CACHE
from localcloud.state import read_state
from tests.runtime_support import deploy
from tests.unit.localcloud.helpers import (
    PROBE_HANDLER,
    ROOT,
    aws,
    aws_cli_v1,
    aws_cli_v2,
    clients,
    deploy_function,
    localcloud,
    probe_zip,
    role_arn,
    start_cloud,
    update_code,
    versioned_bucket,
)

pytestmark = [pytest.mark.e2e, pytest.mark.network]

BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"
FUNCTION = "market_data_fetcher-dev"
KEY = "lambda/dev/lambda_deployment.zip"
PROBES = "ctb-localcloud-probes"
CACHE = ROOT / ".build" / "localcloud" / "cache"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("cloud")
    state = start_cloud(state_dir, CACHE, "--idle-seconds", "600")
    yield state
    done = localcloud("down", "--state-dir", str(state_dir))
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def make(cloud):
    return clients(cloud.url)


@pytest.fixture(scope="module")
def bot(cloud, make, tmp_path_factory):
    """The bot's handler deployed as the program deploys it; returns its artifact."""
    project = tmp_path_factory.mktemp("bot")
    for top in ("aws", "backend"):
        shutil.copytree(ROOT / top, project / top, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "requirements-lambda.txt").write_text("")  # code-only: no pip, no network
    art = ensure_artifact(project_dir=project, runtime="python3.12", cache_dir=project / ".build")
    world = deploy(bucket=BUCKET, client=make, provider="fixture")
    make("s3").put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    uploaded = _run_module(
        "ops", "upload", str(art.path), BUCKET, KEY, "--endpoint-url", cloud.url, "--json"
    )
    version = json.loads(uploaded)["version_id"]
    make("lambda").create_function(
        FunctionName=FUNCTION,
        Role=role_arn(make, "market_data_fetcher-dev-role"),
        Runtime="python3.12",
        Handler="aws.market_data_fetcher.handler",
        Code={"S3Bucket": BUCKET, "S3Key": KEY, "S3ObjectVersion": version},
        Timeout=60,
        MemorySize=512,
        Environment={"Variables": world.env},
        Publish=True,
    )
    make("lambda").create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    return art


@pytest.fixture(scope="module")
def probes(make):
    versioned_bucket(make, PROBES)
    return PROBES


def _run_module(module: str, *args: str) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **EMULATOR_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


CLIS = ["v1", "v2"]


@pytest.fixture(params=CLIS)
def cli(request) -> tuple[str, Path]:
    if request.param == "v1":
        return "v1", aws_cli_v1()
    found = aws_cli_v2()
    if found is None:
        pytest.skip("AWS CLI v2 from PyPI is an x86_64 Linux build")
    return "v2", found


def _invoke_args(version: str, *args: str) -> list[str]:
    # --cli-binary-format is v2's option (v1 sends the payload raw already, and refuses it).
    return [*args, "--cli-binary-format", "raw-in-base64-out"] if version == "v2" else list(args)


def test_the_seed_guides_commands_work_verbatim_plus_an_endpoint(cloud, bot, cli, tmp_path):
    version, exe = cli
    # aws s3 ls: the package is where the program put it
    listing = aws(exe, cloud.url, "s3", "ls", f"s3://{BUCKET}/lambda/dev/", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "lambda_deployment.zip" in listing.stdout
    # aws lambda invoke --payload '{"test": true}': the deployed code runs its health check
    invoked = aws(
        exe,
        cloud.url,
        *_invoke_args(
            version,
            "lambda", "invoke", "--function-name", FUNCTION,
            "--payload", '{"test": true}', "out.json",
        ),
        cwd=tmp_path,
    )  # fmt: skip
    assert invoked.returncode == 0, invoked.stderr
    answer = (tmp_path / "out.json").read_text()
    assert json.loads(invoked.stdout) == {"StatusCode": 200, "ExecutedVersion": "$LATEST"}, answer
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["ok"] is True, report
    # aws logs filter-log-events --filter-pattern REPORT: Lambda's REPORT lines are there
    found = aws(
        exe, cloud.url, "logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{FUNCTION}",
        "--filter-pattern", "REPORT", cwd=tmp_path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    messages = [e["message"] for e in json.loads(found.stdout)["events"]]
    assert messages and all(m.startswith("REPORT RequestId: ") for m in messages)
    assert any("Init Duration: " in m for m in messages)  # the first one was a cold start
    # aws lambda get-function: the code is the build's, byte for byte
    got = aws(exe, cloud.url, "lambda", "get-function", "--function-name", FUNCTION, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["Configuration"]["CodeSha256"] == bot.sha256_b64


def test_a_handler_error_is_unhandled_with_its_type_and_trace(cloud, make, probes, cli, tmp_path):
    version, exe = cli
    name = f"probe-error-{version}"
    deploy_function(make, name, bucket=probes, data=probe_zip("err"))
    done = aws(
        exe,
        cloud.url,
        *_invoke_args(
            version, "lambda", "invoke", "--function-name", name,
            "--payload", '{"boom": "bad input"}', "out.json",
        ),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The CLI reads FunctionError from the X-Amz-Function-Error header.
    assert json.loads(done.stdout)["FunctionError"] == "Unhandled"
    error = json.loads((tmp_path / "out.json").read_text())
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input")
    assert any("probe.py" in frame and "handler" in frame for frame in error["stackTrace"])


def test_the_timeout_is_enforced_as_lambda_enforces_it(cloud, make, probes):
    lam = make("lambda")
    deploy_function(make, "probe-timeout", bucket=probes, data=probe_zip("t"), timeout=2)
    started = time.monotonic()
    answer = lam.invoke(FunctionName="probe-timeout", Payload=b'{"sleep": 60}', LogType="Tail")
    elapsed = time.monotonic() - started
    body = json.loads(answer["Payload"].read())
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 2.00 seconds")
    assert 2 <= elapsed < 15  # not the handler's 60 s
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "Task timed out after 2.00 seconds" in tail and "Status: timeout" in tail
    # AND the environment was killed: the next invocation starts a new one (cold)
    again = lam.invoke(FunctionName="probe-timeout", Payload=b"{}", LogType="Tail")
    assert "FunctionError" not in again
    assert "Init Duration" in base64.b64decode(again["LogResult"]).decode()


def test_a_warm_environment_is_reused(cloud, make, probes):
    lam = make("lambda")
    deploy_function(make, "probe-warm", bucket=probes, data=probe_zip("w"))
    tails = [
        base64.b64decode(
            lam.invoke(FunctionName="probe-warm", LogType="Tail")["LogResult"]
        ).decode()
        for _ in range(3)
    ]
    assert "Init Duration" in tails[0] and "probe init w" in tails[0]
    assert all("Init Duration" not in t and "probe init" not in t for t in tails[1:])
    streams = make("logs").describe_log_streams(logGroupName="/aws/lambda/probe-warm")["logStreams"]
    assert len(streams) == 1 and "[$LATEST]" in streams[0]["logStreamName"]


@pytest.mark.parametrize("change", ["written", "deleted"])
def test_a_code_tree_changed_after_unpacking_is_not_reused(cloud, make, probes, change):
    lam = make("lambda")
    name = f"probe-changed-{change}"
    created = deploy_function(make, name, bucket=probes, data=probe_zip(name))

    def run(qualifier):
        answer = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=b"{}")
        return answer.get("FunctionError"), json.loads(answer["Payload"].read()).get("tag")

    # GIVEN the code run once from its tree in the cache, which it left as unpacked
    assert run("$LATEST") == (None, name)
    tree = CACHE / CODE_CACHE / base64.b64decode(created["CodeSha256"]).hex() / "tree"
    assert [p.name for p in tree.iterdir()] == ["probe.py"]  # no __pycache__, even as root
    # WHEN the tree is changed behind the cache's back (as a handler run as root can)
    tree.chmod(0o755)
    if change == "written":
        (tree / "probe.py").chmod(0o644)
        (tree / "probe.py").write_text(PROBE_HANDLER.format(tag="changed"))
    else:
        (tree / "probe.py").unlink()
    # THEN the next cold start (version 1: an environment of its own) runs the package
    assert run("1") == (None, name)


def test_qualifiers_run_their_versions_code_and_rollback_is_observable(cloud, make, probes):
    lam = make("lambda")
    deploy_function(make, "probe-versions", bucket=probes, data=probe_zip("one"))
    updated = update_code(make, "probe-versions", bucket=probes, data=probe_zip("two"))
    assert updated["Version"] == "2"

    def run(**kw):
        answer = lam.invoke(FunctionName="probe-versions", Payload=b"{}", **kw)
        return answer["ExecutedVersion"], json.loads(answer["Payload"].read())["tag"]

    assert run(Qualifier="live") == ("1", "one")
    assert run(Qualifier="2") == ("2", "two")
    assert run(Qualifier="1") == ("1", "one")
    assert run() == ("$LATEST", "two")
    # WHEN the alias is moved to 2 and `ops rollback` moves it back
    lam.update_alias(FunctionName="probe-versions", Name="live", FunctionVersion="2")
    assert run(Qualifier="live") == ("2", "two")
    _run_module(
        "ops", "rollback", "--function", "probe-versions",
        "--endpoint-url", cloud.url, "--region", "us-east-1",
    )  # fmt: skip
    # THEN `live` runs version 1's code again
    assert run(Qualifier="live") == ("1", "one")


def _wait_for_events(make, bucket: str, needle: str, timeout: float = 30.0) -> list[dict]:
    s3 = make("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix="events/").get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            if needle in body:
                found.append(json.loads(body))
        if found:
            return found
        time.sleep(0.3)
    return []


def test_an_async_invocation_answers_202_and_runs_in_the_background(cloud, make, probes, tmp_path):
    deploy_function(make, "probe-async", bucket=probes, data=probe_zip("a"))
    marker = str(uuid.uuid4())
    done = aws(
        aws_cli_v1(), cloud.url, "lambda", "invoke", "--function-name", "probe-async",
        "--invocation-type", "Event", "--payload", json.dumps({"record": marker}), "out.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["StatusCode"] == 202
    # THEN the handler ran (it wrote the event through boto3, to the local cloud)
    assert _wait_for_events(make, probes, marker) == [{"record": marker}]


def test_fire_invokes_the_rules_alias_with_the_scheduled_event(cloud, make, probes):
    deploy_function(make, "probe-schedule", bucket=probes, data=probe_zip("s"))
    events = make("events")
    rule = events.put_rule(Name="probe-schedule-rule", ScheduleExpression="rate(15 minutes)")
    # As the program's target: the alias, not $LATEST.
    alias_arn = make("lambda").get_alias(FunctionName="probe-schedule", Name="live")["AliasArn"]
    events.put_targets(Rule="probe-schedule-rule", Targets=[{"Id": "live-alias", "Arn": alias_arn}])
    state_dir = read_state_dir(cloud)
    done = localcloud("fire", "probe-schedule-rule", "--state-dir", state_dir)
    assert done.returncode == 0, done.stderr
    assert f"probe-schedule-rule -> {alias_arn}: invoked" in done.stdout
    (event,) = _wait_for_events(make, probes, rule["RuleArn"])
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert event["resources"] == [rule["RuleArn"]] and event["detail"] == {}


def read_state_dir(cloud) -> str:
    state = read_state(Path(cloud.state_dir))
    assert state is not None and state.token == cloud.token
    return cloud.state_dir


def test_the_function_sees_lambdas_environment_and_only_the_local_cloud(cloud, make, probes):
    deploy_function(make, "probe-env", bucket=probes, data=probe_zip("e"), memory=1024)
    answer = make("lambda").invoke(FunctionName="probe-env", Qualifier="live", Payload=b"{}")
    body = json.loads(answer["Payload"].read())
    assert body["endpoint"] == cloud.url  # its AWS calls go to the local cloud
    assert body["has_real_creds"] is False  # the dummy credentials, never the caller's
    assert body["arn"].endswith(":function:probe-env:live")
    assert 9000 < body["remaining_ms"] <= 10000  # the 10 s timeout, counting down
    report = make("logs").filter_log_events(
        logGroupName="/aws/lambda/probe-env", filterPattern="REPORT"
    )
    assert "Memory Size: 1024 MB" in report["events"][0]["message"]


def test_ops_invoke_and_coldstarts_work_against_it(cloud, bot):
    out = _run_module(
        "ops", "invoke", "--function", FUNCTION, "--payload", '{"test": true}',
        "--endpoint-url", cloud.url, "--region", "us-east-1",
    )  # fmt: skip
    assert '"ok": true' in out
    summary = _run_module(
        "ops", "coldstarts", "--function", FUNCTION, "--since", "1h", "--json",
        "--endpoint-url", cloud.url, "--region", "us-east-1",
    )  # fmt: skip
    result = json.loads(summary)
    assert result["invocations"] >= 1 and result["cold_starts"] >= 1


def test_json_log_format_is_honoured_and_coldstarts_reads_it(cloud, make, probes):
    deploy_function(
        make,
        "probe-json",
        bucket=probes,
        data=probe_zip("j"),
        logging_config={
            "LogFormat": "JSON",
            "ApplicationLogLevel": "WARN",
            "SystemLogLevel": "INFO",
        },
    )
    make("lambda").invoke(FunctionName="probe-json", Payload=b"{}")
    messages = [
        e["message"]
        for e in make("logs").filter_log_events(logGroupName="/aws/lambda/probe-json")["events"]
    ]
    kinds = [json.loads(m)["type"] for m in messages if m.startswith('{"time"')]
    assert kinds == ["platform.initStart", "platform.start", "platform.report"]
    # The handler's plain print() lines are INFO: below the WARN application level.
    assert not any("probe event" in m for m in messages)
    summary = _run_module(
        "ops", "coldstarts", "--function", "probe-json", "--since", "1h", "--json",
        "--endpoint-url", cloud.url, "--region", "us-east-1",
    )  # fmt: skip
    assert json.loads(summary)["cold_starts"] == 1


def test_a_handler_that_cannot_load_is_lambdas_init_error(cloud, make, probes):
    deploy_function(
        make, "probe-noimport", bucket=probes, data=probe_zip("n"), handler="missing.handler"
    )
    answer = make("lambda").invoke(FunctionName="probe-noimport", Payload=b"{}", LogType="Tail")
    body = json.loads(answer["Payload"].read())
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Unable to import module 'missing'")
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert "INIT_REPORT Init Duration" in tail and "Error Type: Runtime.ImportModuleError" in tail


def test_a_runtime_that_exits_is_an_exit_error_and_the_next_call_recovers(cloud, make, probes):
    lam = make("lambda")
    deploy_function(make, "probe-exit", bucket=probes, data=probe_zip("x"))
    answer = lam.invoke(FunctionName="probe-exit", Payload=b'{"exit": 3}', LogType="Tail")
    body = json.loads(answer["Payload"].read())
    assert (answer["FunctionError"], body["errorType"]) == ("Unhandled", "Runtime.ExitError")
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert (
        "Status: error\tError Type: Runtime.ExitError"
        in base64.b64decode(answer["LogResult"]).decode()
    )
    again = lam.invoke(FunctionName="probe-exit", Payload=b"{}")
    assert "FunctionError" not in again


def test_reserved_concurrency_throttles_a_second_synchronous_call(cloud, make, probes):
    import threading

    import boto3
    from botocore.config import Config

    lam = make("lambda")
    deploy_function(make, "probe-reserved", bucket=probes, data=probe_zip("r"))
    lam.put_function_concurrency(FunctionName="probe-reserved", ReservedConcurrentExecutions=1)
    lam.invoke(FunctionName="probe-reserved", Payload=b"{}")  # warm, so the next one is quick
    slow = threading.Thread(
        target=lambda: lam.invoke(FunctionName="probe-reserved", Payload=b'{"sleep": 5}')
    )
    slow.start()
    time.sleep(1.5)
    # A client that does not retry: botocore retries a throttle, as against AWS.
    once = boto3.client(
        "lambda",
        endpoint_url=cloud.url,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        with pytest.raises(once.exceptions.TooManyRequestsException) as err:
            once.invoke(FunctionName="probe-reserved", Payload=b"{}")
        assert err.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    finally:
        slow.join()
    # AND once the first is done, calls go through again
    assert "FunctionError" not in lam.invoke(FunctionName="probe-reserved", Payload=b"{}")


def test_memory_above_the_functions_size_is_out_of_memory(cloud, make, probes):
    deploy_function(make, "probe-oom", bucket=probes, data=probe_zip("m"), memory=128)
    answer = make("lambda").invoke(FunctionName="probe-oom", Payload=b'{"alloc_mb": 300}')
    body = json.loads(answer["Payload"].read())
    assert (answer["FunctionError"], body["errorType"]) == ("Unhandled", "Runtime.OutOfMemory")
    report = make("logs").filter_log_events(
        logGroupName="/aws/lambda/probe-oom", filterPattern="REPORT"
    )["events"][0]["message"]
    assert "Error Type: Runtime.OutOfMemory" in report


def test_a_failing_async_event_is_retried_as_its_invoke_config_says(cloud, make, probes):
    lam = make("lambda")
    deploy_function(make, "probe-retry", bucket=probes, data=probe_zip("r"))
    deploy_function(make, "probe-noretry", bucket=probes, data=probe_zip("n"))
    lam.put_function_event_invoke_config(FunctionName="probe-noretry", MaximumRetryAttempts=0)
    for name in ("probe-retry", "probe-noretry"):
        assert (
            lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"boom": "x"}')[
                "StatusCode"
            ]
            == 202
        )

    logs = make("logs")

    def starts(name: str) -> list[str]:
        try:
            events = logs.filter_log_events(
                logGroupName=f"/aws/lambda/{name}", filterPattern="START"
            )["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []  # nothing has run yet
        return [
            e["message"].split()[2] for e in events if e["message"].startswith("START RequestId:")
        ]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(starts("probe-retry")) < 3:
        time.sleep(0.5)
    # THEN the default (2 retries) runs it three times, with one request id, as Lambda does
    attempts = starts("probe-retry")
    assert len(attempts) == 3 and len(set(attempts)) == 1
    assert len(starts("probe-noretry")) == 1
