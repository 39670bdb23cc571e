"""A store that reports the wrong checksum, via botocore's Stubber.

moto accepts wrong SHA-256 checksums, so a store that reports the wrong one is
simulated here: a mismatch must be an error, never a success. (Retries, aborts and
a lying store over real HTTP: tests/e2e/test_ops_upload.py.)
"""

from __future__ import annotations

import base64

import boto3
import pytest
from botocore.stub import Stubber

from ops.package import inspect_package
from ops.upload import ChecksumMismatch, upload, verify
from tests.unit.ops.helpers import BUCKET, KEY, make_zip

WRONG = base64.b64encode(b"\0" * 32).decode()


@pytest.fixture
def stubbed():
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        yield stub, client
        stub.assert_no_pending_responses()


def _head_404(stub):
    stub.add_client_error("head_object", service_error_code="404", http_status_code=404)


def _pkg(tmp_path):
    return inspect_package(make_zip(tmp_path / "p.zip"))


def test_wrong_checksum_in_the_put_response_is_an_error(stubbed, tmp_path):
    stub, s3 = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("put_object", {"VersionId": "v1", "ChecksumSHA256": WRONG})
    with pytest.raises(ChecksumMismatch, match="NOT verified"):
        upload(s3, pkg, BUCKET, KEY)


def test_the_put_names_the_checksum_of_the_bytes_that_were_inspected(stubbed, tmp_path):
    # S3 refuses a body that does not match ChecksumSHA256: a file changed after
    # it was inspected (and hashed) never lands under the inspected checksum.
    stub, s3 = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    sent = {}

    def capture(params, **_):
        sent.update(params)

    s3.meta.events.register("before-parameter-build.s3.PutObject", capture)
    stub.add_response("put_object", {"VersionId": "v1", "ChecksumSHA256": pkg.sha256_b64})
    stub.add_response(
        "head_object",
        {"ChecksumSHA256": pkg.sha256_b64, "ContentLength": pkg.size, "Metadata": pkg.metadata},
    )
    upload(s3, pkg, BUCKET, KEY)
    assert sent["ChecksumSHA256"] == pkg.sha256_b64
    assert sent["ChecksumAlgorithm"] == "SHA256"


def test_wrong_checksum_on_read_back_is_an_error(stubbed, tmp_path):
    stub, s3 = stubbed
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
    stub, s3 = stubbed
    pkg = _pkg(tmp_path)
    _head_404(stub)
    stub.add_response("put_object", {"VersionId": "v1"})
    stub.add_response("head_object", {"ContentLength": pkg.size, "Metadata": pkg.metadata})
    with pytest.raises(ChecksumMismatch, match="ChecksumSHA256 None"):
        upload(s3, pkg, BUCKET, KEY)


@pytest.mark.parametrize(
    ("head", "needle"),
    [
        ({"ContentLength": 1}, r"length 1 \(expected"),
        ({"Metadata": {"sha256": "0" * 64}}, "sha256 metadata 000"),
    ],
)
def test_verify_checks_length_and_metadata_too(stubbed, tmp_path, head, needle):
    stub, s3 = stubbed
    pkg = _pkg(tmp_path)
    answer = {"ChecksumSHA256": pkg.sha256_b64, "ContentLength": pkg.size, "Metadata": pkg.metadata}
    stub.add_response("head_object", {**answer, **head})
    with pytest.raises(ChecksumMismatch, match=needle):
        verify(s3, BUCKET, KEY, version_id="v1", pkg=pkg, checksum=pkg.checksum)
