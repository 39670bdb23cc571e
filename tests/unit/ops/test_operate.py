"""Rollback and status against moto's Lambda with published versions; invoke and
pagination via Stubber."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambda_pkg.errors import UserError
from ops import invoke, rollback
from ops.cli import main
from ops.functions import published_versions
from ops.package import inspect_package
from ops.session import AwsSession, AwsSettings
from ops.status import S3Source, find_s3_version
from ops.upload import upload
from tests.unit.ops.helpers import BUCKET, KEY, write_test_manifest, zip_bytes

FUNCTION = "market_data_fetcher-dev"


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def deployed(bucket, tmp_path):
    """A function with three published versions, each from its own S3 object
    version uploaded by our uploader, and alias live -> 3."""
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(
        RoleName="fn-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name="us-east-1")
    s3 = AwsSession(AwsSettings(region="us-east-1")).s3()
    codes, s3_versions = [], []
    for n in (1, 2, 3):
        code = zip_bytes(f"VERSION = {n}\n")
        path = tmp_path / f"v{n}.zip"
        path.write_bytes(code)
        result = upload(s3, inspect_package(path), BUCKET, KEY)
        s3_versions.append(result.version_id)
        codes.append(code)
        if n == 1:
            lam.create_function(
                FunctionName=FUNCTION,
                Runtime="python3.12",
                Role=role,
                Handler="aws.market_data_fetcher.handler",
                Code={"S3Bucket": BUCKET, "S3Key": KEY, "S3ObjectVersion": result.version_id},
            )
        else:
            lam.update_function_code(
                FunctionName=FUNCTION,
                S3Bucket=BUCKET,
                S3Key=KEY,
                S3ObjectVersion=result.version_id,
            )
        lam.publish_version(FunctionName=FUNCTION)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="3")
    return {"lambda": lam, "codes": codes, "s3_versions": s3_versions}


def _alias_version(lam):
    return lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]


def test_rollback_one_step_moves_the_alias(deployed, capsys):
    assert main(["rollback", "--function", FUNCTION]) == 0
    assert _alias_version(deployed["lambda"]) == "2"
    out = capsys.readouterr().out
    assert "version 3 -> 2" in out
    assert _b64(deployed["codes"][1]) in out
    # The undo command, pasted as printed, reaches the same region (and the same
    # endpoint when there is one: tests/e2e/test_ops_upload.py).
    assert f"rollback --function {FUNCTION} --alias live --to 3 --region us-east-1" in out


def test_repeated_rollbacks_walk_back_then_refuse(deployed, capsys):
    assert main(["rollback", "--function", FUNCTION]) == 0
    assert main(["rollback", "--function", FUNCTION]) == 0
    assert _alias_version(deployed["lambda"]) == "1"
    capsys.readouterr()
    # WHEN there is nothing older
    code = main(["rollback", "--function", FUNCTION])
    err = capsys.readouterr().err
    # THEN it refuses and the alias stays
    assert code == 2
    assert "nothing to roll back to" in err
    assert _alias_version(deployed["lambda"]) == "1"


def test_rollback_to_a_named_version(deployed):
    assert main(["rollback", "--function", FUNCTION, "--to", "1"]) == 0
    assert _alias_version(deployed["lambda"]) == "1"


def test_rollback_steps(deployed):
    assert main(["rollback", "--function", FUNCTION, "--steps", "2"]) == 0
    assert _alias_version(deployed["lambda"]) == "1"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--to", "9"], "--to 9: not a published version (published: 1, 2, 3)"),
        (["--to", "3"], "already points to version 3"),
        (["--steps", "3"], "nothing to roll back to"),
        (["--steps", "0"], "--steps 0: must be 1 or more"),
        (["--alias", "canary"], f"--alias canary: function {FUNCTION} has no such alias"),
    ],
)
def test_rollback_refusals(deployed, argv, needle, capsys):
    code = main(["rollback", "--function", FUNCTION, *argv])
    assert code == 2
    assert needle in capsys.readouterr().err
    assert _alias_version(deployed["lambda"]) == "3"


def test_rollback_of_an_unknown_function(aws, capsys):
    # The missing function is named, not blamed on its alias.
    assert main(["rollback", "--function", "nope"]) == 2
    assert "--function nope: no such Lambda function" in capsys.readouterr().err


def test_an_error_without_a_response_is_not_masked():
    # GIVEN a client error whose response is None (error_code is None-safe)
    class Odd(Exception):
        response = None

    class Lam:
        def get_alias(self, **_kw):
            raise Odd("the real failure")

    # THEN that error surfaces, not an AttributeError from reading its code
    with pytest.raises(Odd, match="the real failure"):
        rollback.rollback(Lam(), FUNCTION)


def test_choose_target_skips_newer_versions():
    # After a rollback to 2, versions 3 and 4 are newer; one more step goes to 1.
    assert rollback.choose_target([1, 2, 3, 4], 2, to=None, steps=1) == 1


def test_status_shows_alias_version_code_and_s3_version(deployed, capsys):
    code = main(["status", "--function", FUNCTION, "--bucket", BUCKET, "--key", KEY])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{FUNCTION}: alias live -> version 3" in out
    assert _b64(deployed["codes"][2]) in out
    assert f"version {deployed['s3_versions'][2]} (current)" in out


def test_status_after_rollback_finds_the_noncurrent_s3_version(deployed, capsys):
    main(["rollback", "--function", FUNCTION, "--to", "1"])
    capsys.readouterr()
    assert main(["status", "--function", FUNCTION, "--bucket", BUCKET, "--key", KEY]) == 0
    out = capsys.readouterr().out
    assert "version 1" in out
    assert f"version {deployed['s3_versions'][0]} (noncurrent)" in out


def test_status_json(deployed, capsys):
    assert main(["status", "--function", FUNCTION, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == "3" and data["ok"] is True
    assert data["code_sha256"] == _b64(deployed["codes"][2])


def test_status_reports_code_that_came_from_elsewhere(deployed, capsys):
    deployed["lambda"].update_function_code(FunctionName=FUNCTION, ZipFile=zip_bytes("other"))
    code = main(["status", "--function", FUNCTION, "--alias", "", "--bucket", BUCKET, "--key", KEY])
    assert code == 1
    assert "no object version of" in capsys.readouterr().err


def _manifest_for(tmp_path, data: bytes):
    path = tmp_path / "m" / "manifest.json"
    # CI may keep only the manifest: its zip is gone.
    write_test_manifest(path.parent / "gone.zip", path, data=data)
    return path


def test_integrity_check_passes_for_the_deployed_build(deployed, tmp_path, capsys):
    manifest = _manifest_for(tmp_path, deployed["codes"][2])
    assert main(["status", "--function", FUNCTION, "--manifest", str(manifest)]) == 0
    assert "integrity   OK" in capsys.readouterr().out


def test_integrity_check_fails_for_another_build(deployed, tmp_path, capsys):
    manifest = _manifest_for(tmp_path, deployed["codes"][0])
    assert main(["status", "--function", FUNCTION, "--manifest", str(manifest)]) == 1
    assert "integrity check FAILED" in capsys.readouterr().err


def test_status_manifest_with_wrong_field_types_is_a_user_error(tmp_path, capsys):
    manifest = _manifest_for(tmp_path, b"code")
    manifest.write_text(manifest.read_text().replace('"size": 4', '"size": "x"'))
    # No AWS is reached: the manifest is read first.
    code = main(["status", "--function", FUNCTION, "--manifest", str(manifest), "--endpoint-url",
                 "http://127.0.0.1:9", "--max-attempts", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert str(manifest) in err and "size" in err and "-m lambda_pkg build" in err


def test_status_bucket_without_key_is_a_user_error(capsys):
    assert main(["status", "--function", FUNCTION, "--bucket", BUCKET]) == 2
    assert "--bucket and --key go together" in capsys.readouterr().err


# --- invoke (moto cannot run code without Docker: a stubbed client stands in) -------------


def _stub_invoke(monkeypatch, response):
    client = boto3.client("lambda", region_name="us-east-1")
    stub = Stubber(client)
    stub.add_response("invoke", response)
    stub.activate()
    monkeypatch.setattr("ops.session.AwsSession.lambda_", lambda self: client)
    return stub


def _payload(obj) -> StreamingBody:
    raw = json.dumps(obj).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_invoke_sends_the_default_payload_and_prints_the_response(monkeypatch, capsys):
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": _payload({"statusCode": 200}), "ExecutedVersion": "3"},
            {"FunctionName": FUNCTION, "Payload": b'{"test": true}', "LogType": "Tail"},
        )
        monkeypatch.setattr("ops.session.AwsSession.lambda_", lambda self: client)
        assert main(["invoke", "--function", FUNCTION]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"statusCode": 200}
    assert "status 200, version 3" in captured.err


def test_invoke_function_error_exits_non_zero(monkeypatch, capsys):
    log_tail = base64.b64encode(b"Traceback: boom").decode()
    _stub_invoke(
        monkeypatch,
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": _payload({"errorMessage": "boom"}),
            "LogResult": log_tail,
        },
    )
    code = main(["invoke", "--function", FUNCTION, "--payload", '{"symbols": ["SPY"]}', "--logs"])
    captured = capsys.readouterr()
    assert code == 1
    assert "boom" in captured.out
    assert "Traceback: boom" in captured.err
    assert "the function failed (Unhandled)" in captured.err


def test_invoke_rejects_bad_json_before_any_call(monkeypatch, capsys):
    monkeypatch.setattr("ops.session.AwsSession.lambda_", pytest.fail)
    assert main(["invoke", "--function", FUNCTION, "--payload", "{test"]) == 2
    assert "--payload: not valid JSON" in capsys.readouterr().err


def test_invoke_unknown_function_is_a_user_error():
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("invoke", service_error_code="ResourceNotFoundException")
        with pytest.raises(UserError, match="no such Lambda function"):
            invoke.invoke(client, "nope", b"{}")


def test_an_oversized_payload_is_refused_before_any_call(monkeypatch, capsys):
    monkeypatch.setattr("ops.session.AwsSession.lambda_", pytest.fail)
    big = '{"x": "' + "a" * (6 * 1024 * 1024) + '"}'
    assert main(["invoke", "--function", FUNCTION, "--payload", big]) == 2
    assert "over Lambda's 6,291,456-byte limit" in capsys.readouterr().err


# --- pagination: botocore's paginators follow every page ---------------------------------


def _version(n: str) -> dict:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}:{n}"
    return {"FunctionName": FUNCTION, "FunctionArn": arn, "Version": n}


def test_published_versions_are_read_from_every_page():
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "list_versions_by_function",
            {"Versions": [_version("$LATEST"), _version("1"), _version("2")], "NextMarker": "m"},
            {"FunctionName": FUNCTION},
        )
        stub.add_response(
            "list_versions_by_function",
            {"Versions": [_version("3")]},
            {"FunctionName": FUNCTION, "Marker": "m"},
        )
        assert published_versions(client, FUNCTION) == [1, 2, 3]


def test_the_s3_version_is_found_on_a_later_page():
    client = boto3.client("s3", region_name="us-east-1")
    code = base64.b64encode(b"c" * 32).decode()
    with Stubber(client) as stub:
        stub.add_response(
            "list_object_versions",
            {
                "Versions": [{"Key": KEY, "VersionId": "v3", "IsLatest": True}],
                "IsTruncated": True,
                "NextKeyMarker": KEY,
                "NextVersionIdMarker": "v3",
            },
            {"Bucket": BUCKET, "Prefix": KEY},
        )
        stub.add_response("head_object", {"ChecksumSHA256": "other", "Metadata": {}})
        stub.add_response(
            "list_object_versions",
            {
                "Versions": [{"Key": KEY, "VersionId": "v2", "IsLatest": False}],
                "IsTruncated": False,
            },
            {"Bucket": BUCKET, "Prefix": KEY, "KeyMarker": KEY, "VersionIdMarker": "v3"},
        )
        stub.add_response("head_object", {"ChecksumSHA256": code, "Metadata": {}})
        assert find_s3_version(client, BUCKET, KEY, code) == S3Source("v2", False)
