"""`scripts/deploy.sh --local --keep` / `--down`: the stack deployed into a local cloud
that stays up, redeployed with only what changed, and stopped with nothing left behind.

One journey for the module (the `journey` fixture), because each step builds on the
last: a first `--keep` through scripts/deploy.sh (the module's only run of the script),
the seed guide's commands with the real AWS CLI (awscli from PyPI), an unchanged re-run,
a code change, a deploy stopped half-way and the run that finishes it, then `--down`.
The tests assert on what each step observed. The re-runs go in process through
`main(argv)`; so do the flag errors.

The package is a code-only artifact (no dependencies, no network); the first
invocation installs the Lambda runtime into .build/localcloud/cache (then cached).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.rehearsal.__main__ import main
from infra.rehearsal.keep import record_path
from infra.rehearsal.run import rehearse
from lambda_pkg.artifact import Artifact, write_manifest
from lambda_pkg.interpreters import find_interpreter
from localcloud.control import alive
from localcloud.state import read_state
from tests.unit.localcloud.helpers import ROOT, aws, aws_cli_v1, clients
from tests.unit.rehearsal.helpers import code_only_artifact, run_deploy, script_env

pytestmark = [pytest.mark.e2e, pytest.mark.network]

FUNCTION = "market_data_fetcher-dev"
BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"
KEY = "lambda/dev/lambda_deployment.zip"
FIXTURE = ["--config", "marketDataProvider=fixture"]
WRITES = {"PUT", "DELETE", "PATCH"}


def _variant(base: Artifact, directory: Path, tag: str) -> Artifact:
    """`base` plus one small module: other code, so another sha256."""
    directory.mkdir(parents=True)
    path = directory / "code.zip"
    shutil.copy(base.path, path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("aws/keep_probe.py", (1980, 1, 1, 0, 0, 0)), f"TAG = {tag!r}\n")
    data = path.read_bytes()
    variant = dataclasses.replace(
        base,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        manifest_path=directory / "manifest.json",
    )
    write_manifest(variant)
    return variant


def _keep_in_process(state_dir: Path, artifact: Artifact) -> tuple[int, dict[str, Any], float]:
    """`python -m infra.rehearsal --keep --json` via main(argv): (exit code, result, seconds)."""
    os.environ["CTB_ARTIFACT_MANIFEST"] = str(artifact.manifest_path)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--keep", "--json", "--state-dir", str(state_dir), *FIXTURE])
    finally:
        del os.environ["CTB_ARTIFACT_MANIFEST"]
    seconds = time.perf_counter() - start
    assert out.getvalue(), err.getvalue()[-3000:]
    return code, json.loads(out.getvalue()), seconds


def _moto_requests(state_dir: Path, offset: int) -> list[str]:
    """The requests moto_server logged after byte `offset` of its log, as "METHOD path"."""
    text = (state_dir / "moto.log").read_bytes()[offset:].decode(errors="replace")
    return [f"{m} {p}" for m, p in re.findall(r'"([A-Z]+) (/\S*)', text)]


def _is_write(request: str) -> bool:
    """A write to any REST API (Lambda, S3: PUT/DELETE/PATCH, or POST to a resource).
    A POST to "/" is a query- or JSON-protocol call, reads included (the program's
    getAvailabilityZones invoke is EC2's DescribeAvailabilityZones, run on every
    deploy); those services' state is compared by the snapshots instead."""
    method, path = request.split(" ", 1)
    return method in WRITES or (method == "POST" and path.split("?")[0] != "/")


def _log_size(state_dir: Path) -> int:
    return (state_dir / "moto.log").stat().st_size


def _snapshot(make) -> dict[str, Any]:
    lam, s3 = make("lambda"), make("s3")
    return {
        "versions": [
            (v["Version"], v["CodeSha256"])
            for v in lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
        ],
        "live": lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"],
        "live_code": lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="live")[
            "CodeSha256"
        ],
        "package_versions": len(
            s3.list_object_versions(Bucket=BUCKET, Prefix=KEY).get("Versions", [])
        ),
    }


def _session_pids(leader: int) -> set[int]:
    """Every process in `leader`'s session: the daemon started its own."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            if int(fields[3]) == leader:  # field 6 of stat: the session id
                pids.add(int(stat.parent.name))
    return pids


def _interrupted_keep(state_dir: Path, artifact: Artifact, after_s: float) -> tuple[int, str]:
    """`python -m infra.rehearsal --keep` sent SIGINT `after_s` into its deploy step."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.rehearsal",
            "--keep",
            "--state-dir",
            str(state_dir),
            *FIXTURE,
        ],
        cwd=ROOT,
        env={**os.environ, "CTB_ARTIFACT_MANIFEST": str(artifact.manifest_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    said = ""
    while "==> deploy" not in said:
        line = proc.stderr.readline()
        assert line, said
        said += line
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, said + rest


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("keep")
    state_dir = tmp / "cloud"
    seen: dict[str, Any] = {"state_dir": state_dir}
    first = code_only_artifact(tmp / "a")
    second, third = _variant(first, tmp / "b", "b"), _variant(first, tmp / "c", "c")
    seen["artifacts"] = (first, second, third)
    env = script_env(tmp, pulumi=False, credentials=False)
    env["CTB_ARTIFACT_MANIFEST"] = str(first.manifest_path)
    # The cloud this starts runs the functions with the target Python: name the one this
    # machine has (script_env's HOME and PATH hide pyenv's).
    target = find_interpreter("3.12")
    if target is not None:
        env["LAMBDA_PKG_PYTHON"] = str(target.path)
    extra = ["--", "--state-dir", str(state_dir)]
    try:
        # 1. scripts/deploy.sh --local --keep: a cloud started and left running
        start = time.perf_counter()
        seen["keep"] = run_deploy("--local", "--keep", *extra, *FIXTURE, env=env, timeout=300)
        seen["keep_seconds"] = time.perf_counter() - start
        assert seen["keep"].returncode == 0, seen["keep"].stderr[-3000:]
        cloud = read_state(state_dir)
        assert cloud is not None
        seen["cloud"] = cloud
        make = clients(cloud.url)

        # 2. the seed guide's commands, with the real AWS CLI, as pasted
        cli, cwd = aws_cli_v1(), tmp / "cli"
        cwd.mkdir()
        seen["ls"] = aws(cli, cloud.url, "s3", "ls", f"s3://{BUCKET}/lambda/dev/", cwd=cwd)
        seen["invoke"] = aws(
            cli, cloud.url, "lambda", "invoke", "--function-name", FUNCTION,
            "--payload", '{"test": true}', "out.json", cwd=cwd,
        )  # fmt: skip
        seen["out"] = (cwd / "out.json").read_text() if (cwd / "out.json").exists() else ""
        seen["report"] = aws(
            cli, cloud.url, "logs", "filter-log-events", "--log-group-name",
            f"/aws/lambda/{FUNCTION}", "--filter-pattern", "REPORT", cwd=cwd,
        )  # fmt: skip

        seen["get"] = aws(
            cli, cloud.url, "lambda", "get-function", "--function-name", FUNCTION,
            "--qualifier", "live", cwd=cwd,
        )  # fmt: skip

        # 3. the same again: nothing to do
        seen["before_same"] = _snapshot(make)
        offset = _log_size(state_dir)
        seen["same"] = _keep_in_process(state_dir, first)
        seen["same_requests"] = _moto_requests(state_dir, offset)
        seen["after_same"] = _snapshot(make)

        # 4. new code: the package, the function and its alias change, nothing else
        seen["changed"] = _keep_in_process(state_dir, second)
        seen["after_change"] = _snapshot(make)

        # 5. stopped half-way (the function updated, the alias not yet), then finished
        def stop_after_function(line: str) -> None:
            if "+ aws:lambda/function:Function" in line:
                raise RuntimeError("stopped here, as a Ctrl-C would")

        os.environ["CTB_ARTIFACT_MANIFEST"] = str(third.manifest_path)
        try:
            seen["stopped"] = rehearse(
                ROOT,
                "dev",
                overrides={"marketDataProvider": "fixture"},
                progress=stop_after_function,
                verbose=True,
                keep=state_dir,
            )
        finally:
            del os.environ["CTB_ARTIFACT_MANIFEST"]
        seen["stopped_record"] = json.loads(record_path(state_dir, "dev").read_text())
        seen["after_stop"] = _snapshot(make)
        seen["finished"] = _keep_in_process(state_dir, third)
        seen["after_finish"] = _snapshot(make)

        # 6. a real Ctrl-C in the deploy step, then the run that finishes it
        fourth = _variant(first, tmp / "d", "d")
        seen["fourth"] = fourth
        seen["sigint"] = _interrupted_keep(state_dir, fourth, after_s=1.5)
        seen["sigint_record"] = json.loads(record_path(state_dir, "dev").read_text())
        seen["after_sigint"] = _keep_in_process(state_dir, fourth)
        seen["after_sigint_cloud"] = _snapshot(make)

        # 7. scripts/deploy.sh --local --down: every process of the cloud gone
        seen["pids"] = _session_pids(cloud.pid)
    finally:
        seen["down"] = run_deploy("--local", "--down", *extra, env=env)
        seen["down_again"] = run_deploy("--local", "--down", *extra, env=env)
    seen["left"] = {pid for pid in seen["pids"] if alive(pid)}
    return seen


def test_keep_leaves_a_cloud_running_and_prints_the_lines_to_reach_it(journey):
    proc, cloud = journey["keep"], journey["cloud"]
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{cloud.port}\n" in proc.stdout
    for line in (
        "export AWS_ACCESS_KEY_ID=testing",
        "export AWS_SECRET_ACCESS_KEY=testing",
        "export AWS_DEFAULT_REGION=us-east-1",
        "unset AWS_PROFILE AWS_DEFAULT_PROFILE",
        f"aws lambda invoke --function-name {FUNCTION} --payload '{{\"test\": true}}'",
        "--filter-pattern REPORT",
        "scripts/deploy.sh --local --down",
    ):
        assert line in proc.stdout
    created = re.search(r"(\d+) created, 0 updated, 0 unchanged", proc.stdout)
    assert created, proc.stdout[-2000:]
    assert int(created[1]) > 22  # the market-data half's 22 resources and the service's
    # the first deploy ran the rehearsal's checks: the handler ran from the package
    assert "invoke run" in proc.stderr


def test_the_seed_guides_commands_work_against_it(journey):
    assert journey["ls"].returncode == 0, journey["ls"].stderr
    assert "lambda_deployment.zip" in journey["ls"].stdout
    assert journey["invoke"].returncode == 0, journey["invoke"].stderr
    assert json.loads(journey["out"])["ok"] is True, journey["out"]
    assert journey["report"].returncode == 0, journey["report"].stderr
    messages = [e["message"] for e in json.loads(journey["report"].stdout)["events"]]
    assert any(m.startswith("REPORT RequestId: ") for m in messages), messages
    assert journey["get"].returncode == 0, journey["get"].stderr
    code = json.loads(journey["get"].stdout)["Configuration"]["CodeSha256"]
    assert code == journey["artifacts"][0].sha256_b64


def test_an_unchanged_rerun_writes_nothing(journey):
    code, result, _ = journey["same"]
    assert code == 0, result["error"]
    kept = result["kept"]
    assert (kept["created"], kept["updated"], kept["writes"]) == ([], [], 0)
    assert kept["unchanged"] == len(result["resources"])  # every resource, both services
    assert not kept["started"]  # the running cloud, not a new one
    # by moto_server's own request log: reads only
    requests = journey["same_requests"]
    assert requests, "the re-run made no request at all (verify reads the function)"
    assert not [r for r in requests if _is_write(r)], requests
    assert journey["after_same"] == journey["before_same"]


def test_a_code_change_updates_the_package_function_and_alias_only(journey):
    code, result, _ = journey["changed"]
    assert code == 0, result["error"]
    kept = result["kept"]
    updated = sorted(key.split("::")[0].rsplit(":", 1)[1] for key in kept["updated"])
    assert updated == ["Alias", "BucketObjectv2", "Function"]
    assert kept["created"] == []
    before, after = journey["after_same"], journey["after_change"]
    second = journey["artifacts"][1]
    assert after["package_versions"] == before["package_versions"] + 1
    assert len(after["versions"]) == len(before["versions"]) + 1
    assert after["live"] == after["versions"][-1][0] != before["live"]
    assert after["live_code"] == second.sha256_b64
    # the rehearsal's checks ran again on the new code, in the kept cloud
    steps = [s["name"] for s in result["steps"]]
    ran = [s for s in steps if s in ("invoke test", "invoke run", "inspect")]
    assert ran == ["invoke test", "invoke run", "inspect"], steps


def test_a_deploy_stopped_half_way_is_recorded_as_it_stands_and_the_next_finishes_it(journey):
    stopped, record = journey["stopped"], journey["stopped_record"]
    assert stopped.failed_step == "deploy"
    entries = record["resources"]
    [function] = [e for k, e in entries.items() if k.startswith("aws:lambda/function:Function::")]
    assert not function["pending"]
    third = journey["artifacts"][2]
    assert function["outputs"]["codeSha256"] == third.sha256_b64
    # the cloud holds what the record says: the function's new version, the alias not moved
    at_stop = journey["after_stop"]
    assert at_stop["versions"][-1][1] == third.sha256_b64
    assert at_stop["live_code"] == journey["artifacts"][1].sha256_b64
    code, result, _ = journey["finished"]
    assert code == 0, result["error"]
    updated = [key.split("::")[0] for key in result["kept"]["updated"]]
    assert "aws:lambda/alias:Alias" in updated
    assert "aws:lambda/function:Function" not in updated  # not published twice
    done = journey["after_finish"]
    assert done["versions"] == at_stop["versions"]
    assert done["live"] == done["versions"][-1][0]
    assert done["live_code"] == third.sha256_b64


def test_ctrl_c_in_the_deploy_leaves_a_record_the_next_run_finishes_from(journey):
    code, said = journey["sigint"]
    assert code == 130, said[-2000:]
    assert "the local cloud keeps running and its record names what it holds" in said
    # nothing half-done in the record: the resource in flight finished first
    record = journey["sigint_record"]["resources"]
    assert not [k for k, e in record.items() if e["pending"]]
    code, result, _ = journey["after_sigint"]
    assert code == 0, result["error"]
    assert result["kept"]["created"] == []
    changed = {key.split("::")[0].rsplit(":", 1)[1] for key in result["kept"]["updated"]}
    assert changed <= {"BucketObjectv2", "Function", "Alias"}
    assert journey["after_sigint_cloud"]["live_code"] == journey["fourth"].sha256_b64


def test_down_leaves_no_process_behind_and_a_second_down_says_so(journey):
    assert journey["pids"], "the cloud's processes were not found"
    assert journey["down"].returncode == 0, journey["down"].stderr
    assert "nothing is left running" in journey["down"].stderr
    assert journey["left"] == set()
    assert read_state(journey["state_dir"]) is None
    assert not record_path(journey["state_dir"], "dev").exists()
    again = journey["down_again"]
    assert again.returncode == 0
    assert "no local cloud is running" in again.stderr and "nothing to stop" in again.stderr


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--keep", "--down"], "--keep and --down do not combine"),
        (["--down", "--json"], "--down stops the local cloud; it takes no --json or --config"),
        (["--state-dir", "x"], "--state-dir is for --keep and --down"),
        (["--keep", "--stack", "a b"], "--stack 'a b' is not a stack name"),
    ],
)
def test_a_bad_combination_is_one_line_and_exit_2(argv, said, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err


def test_down_when_nothing_runs_says_so_and_exits_0(tmp_path, capsys):
    assert main(["--down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().err
