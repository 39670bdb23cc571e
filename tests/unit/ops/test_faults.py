"""Faults via botocore's Stubber: retries, checksum mismatches, aborts.

moto accepts wrong SHA-256 checksums, so a store that reports the wrong one is
simulated here: a mismatch must be an error, never a success.
"""

from __future__ import annotations

import base64
import hashlib

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber

from lambda_pkg.errors import UserError
from ops.cli import main
from ops.session import RetriesExhausted, RetryingClient, is_retryable
from ops.upload import ChecksumMismatch, inspect_package, upload
from tests.unit.ops.helpers import BUCKET, KEY, make_zip

WRONG = base64.b64encode(b"\0" * 32).decode()


@pytest.fixture
def stubbed():
    client = boto3.client("s3", region_name="us-east-1")
    sleeps: list[float] = []
    warnings: list[str] = []
    wrapped = RetryingClient(client, max_attempts=3, sleep=sleeps.append, warn=warnings.append)
    with Stubber(client) as stub:
        yield stub, wrapped, sleeps, warnings
        stub.assert_no_pending_responses()


def _head_404(stub):
    stub.add_client_error("head_object", service_error_code="404", http_status_code=404)


def _pkg(tmp_path):
    return inspect_package(make_zip(tmp_path / "p.zip"))


def test_throttling_is_retried_with_backoff_then_succeeds(stubbed):
    stub, s3, sleeps, warnings = stubbed
    stub.add_client_error("head_bucket", service_error_code="SlowDown", http_status_code=503)
    stub.add_client_error("head_bucket", service_error_code="InternalError", http_status_code=500)
    stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
    s3.head_bucket(Bucket=BUCKET)
    assert len(sleeps) == 2
    # Full jitter under a doubling cap.
    assert 0 <= sleeps[0] <= 0.25 and 0 <= sleeps[1] <= 0.5
    assert "SlowDown, HTTP 503" in warnings[0] and "attempt 2 of 3" in warnings[0]


def test_retries_are_bounded(stubbed):
    stub, s3, sleeps, _ = stubbed
    for _ in range(3):
        stub.add_client_error("head_bucket", service_error_code="SlowDown", http_status_code=503)
    with pytest.raises(RetriesExhausted, match="failed after 3 attempts"):
        s3.head_bucket(Bucket=BUCKET)
    assert len(sleeps) == 2


def test_client_errors_are_not_retried(stubbed):
    stub, s3, sleeps, _ = stubbed
    stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
    with pytest.raises(s3.client.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key=KEY)
    assert sleeps == []


def test_access_denied_becomes_a_user_error_without_retry(stubbed):
    stub, s3, sleeps, _ = stubbed
    stub.add_client_error("put_object", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(UserError, match=r"access denied \(AccessDenied\) on s3:PutObject"):
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"x")
    assert sleeps == []


class _FlakyClient:
    """A client whose connection drops twice: Stubber cannot raise connection errors."""

    def __init__(self, failures):
        self.failures = failures
        self.calls = 0
        self.meta = boto3.client("s3", region_name="us-east-1").meta

    def head_bucket(self, **_):
        self.calls += 1
        if self.calls <= self.failures:
            raise EndpointConnectionError(endpoint_url="https://s3.example")
        return {"ok": True}


def test_connection_errors_are_retried():
    flaky = _FlakyClient(failures=2)
    s3 = RetryingClient(flaky, max_attempts=3, sleep=lambda _s: None, warn=lambda _m: None)
    assert s3.head_bucket(Bucket=BUCKET) == {"ok": True}
    assert flaky.calls == 3
    assert is_retryable(EndpointConnectionError(endpoint_url="x"))


def test_a_failed_part_is_retried_alone(stubbed, tmp_path):
    stub, s3, sleeps, _ = stubbed
    pkg = inspect_package(make_zip(tmp_path / "p.zip", payload=3000))
    size = pkg.size
    data = pkg.path.read_bytes()
    chunks = [data[:2048], data[2048:]]
    b64s = [base64.b64encode(hashlib.sha256(c).digest()).decode() for c in chunks]
    _head_404(stub)
    stub.add_response("create_multipart_upload", {"UploadId": "u1"})
    stub.add_response("upload_part", {"ETag": '"e1"', "ChecksumSHA256": b64s[0]})
    stub.add_client_error("upload_part", service_error_code="SlowDown", http_status_code=503)
    stub.add_response(
        "upload_part",
        {"ETag": '"e2"', "ChecksumSHA256": b64s[1]},
        {
            "Bucket": BUCKET,
            "Key": KEY,
            "UploadId": "u1",
            "PartNumber": 2,
            "Body": ANY,
            "ChecksumSHA256": b64s[1],
        },
    )
    stub.add_response("complete_multipart_upload", {"VersionId": "v1"})
    composite = base64.b64encode(
        hashlib.sha256(b"".join(hashlib.sha256(c).digest() for c in chunks)).digest()
    ).decode()
    stub.add_response(
        "head_object",
        {
            "ChecksumSHA256": f"{composite}-2",
            "ContentLength": size,
            "Metadata": pkg.metadata,
            "VersionId": "v1",
        },
    )
    result = upload(s3, pkg, BUCKET, KEY, multipart_threshold=1, part_size=2048)
    assert result.version_id == "v1" and result.parts == 2
    assert len(sleeps) == 1


def test_wrong_checksum_in_the_put_response_is_an_error(stubbed, tmp_path):
    stub, s3, _, _ = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("put_object", {"VersionId": "v1", "ChecksumSHA256": WRONG})
    with pytest.raises(ChecksumMismatch, match="NOT verified"):
        upload(s3, pkg, BUCKET, KEY)


def test_wrong_checksum_on_read_back_is_an_error(stubbed, tmp_path):
    stub, s3, _, _ = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("put_object", {"VersionId": "v1"})
    stub.add_response(
        "head_object",
        {"ChecksumSHA256": WRONG, "ContentLength": pkg.size, "Metadata": pkg.metadata},
        {"Bucket": BUCKET, "Key": KEY, "VersionId": "v1", "ChecksumMode": "ENABLED"},
    )
    with pytest.raises(ChecksumMismatch, match=f"ChecksumSHA256 {WRONG}"):
        upload(s3, pkg, BUCKET, KEY)


def test_missing_checksum_on_read_back_is_an_error(stubbed, tmp_path):
    # A store that cannot return the checksum cannot confirm the upload either.
    stub, s3, _, _ = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("put_object", {"VersionId": "v1"})
    stub.add_response("head_object", {"ContentLength": pkg.size, "Metadata": pkg.metadata})
    with pytest.raises(ChecksumMismatch, match="ChecksumSHA256 None"):
        upload(s3, pkg, BUCKET, KEY)


def test_wrong_part_checksum_aborts_the_upload(stubbed, tmp_path, capsys):
    stub, s3, _, _ = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("create_multipart_upload", {"UploadId": "u1"})
    stub.add_response("upload_part", {"ETag": '"e1"', "ChecksumSHA256": WRONG})
    stub.add_response(
        "abort_multipart_upload", {}, {"Bucket": BUCKET, "Key": KEY, "UploadId": "u1"}
    )
    with pytest.raises(ChecksumMismatch, match="part 1"):
        upload(s3, pkg, BUCKET, KEY, multipart_threshold=1, part_size=1 << 20)
    assert "multipart upload aborted" in capsys.readouterr().err


def test_a_failure_mid_upload_aborts(stubbed, tmp_path, capsys):
    stub, s3, _, _ = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("create_multipart_upload", {"UploadId": "u1"})
    for _ in range(3):
        stub.add_client_error("upload_part", service_error_code="SlowDown", http_status_code=503)
    stub.add_response("abort_multipart_upload", {})
    with pytest.raises(RetriesExhausted):
        upload(s3, pkg, BUCKET, KEY, multipart_threshold=1, part_size=1 << 20)
    assert "upload failed: multipart upload aborted" in capsys.readouterr().err


def test_cli_exits_1_on_checksum_mismatch(bucket, tmp_path, monkeypatch, capsys):
    # GIVEN a store that acknowledges with the wrong checksum (moto would not)
    package = make_zip(tmp_path / "lambda_deployment.zip")
    real_put = RetryingClient.__getattr__

    def lying(self, name):
        method = real_put(self, name)
        if name != "put_object":
            return method

        def put(**params):
            response = method(**params)
            return {**response, "ChecksumSHA256": WRONG}

        return put

    monkeypatch.setattr(RetryingClient, "__getattr__", lying)
    # WHEN uploading through the CLI
    code = main(["upload", str(package), bucket, KEY])
    captured = capsys.readouterr()
    # THEN it fails, and never prints success
    assert code == 1
    assert "NOT verified" in captured.err
    assert "uploaded" not in captured.out


def test_access_denied_mid_multipart_aborts_and_stays_one_line(stubbed, tmp_path, capsys):
    stub, s3, _, _ = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("create_multipart_upload", {"UploadId": "u1"})
    stub.add_client_error("upload_part", service_error_code="AccessDenied", http_status_code=403)
    stub.add_response(
        "abort_multipart_upload", {}, {"Bucket": BUCKET, "Key": KEY, "UploadId": "u1"}
    )
    with pytest.raises(UserError, match="s3:UploadPart"):
        upload(s3, pkg, BUCKET, KEY, multipart_threshold=1, part_size=1 << 20)
    assert capsys.readouterr().err == ""


def test_interrupted_single_put_says_nothing_changed(bucket, s3, tmp_path, capsys):
    pkg = _pkg(tmp_path)

    def interrupt(**_):
        raise KeyboardInterrupt

    s3.client.meta.events.register("before-parameter-build.s3.PutObject", interrupt)
    with pytest.raises(KeyboardInterrupt):
        upload(s3, pkg, bucket, KEY)
    assert "upload interrupted: s3://" in capsys.readouterr().err
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
