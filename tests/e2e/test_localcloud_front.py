"""The front before moto_server, without functions (no network): every request it does
not serve reaches moto unchanged and comes back unchanged, and it learns the code
locations from the control-plane calls on the way."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
from urllib.parse import urlsplit

import pytest

from localcloud.emulator import moto_server
from localcloud.front import FrontServer
from localcloud.registry import CodeRegistry, S3Code
from tests.unit.localcloud.helpers import clients, make_zip, role_arn, versioned_bucket

pytestmark = pytest.mark.e2e
BUCKET = "front-test-bucket"
CREDENTIAL = "testing/20260101/us-east-1/s3/aws4_request"  # moto routes S3 by it


@pytest.fixture
def front(tmp_path):
    with moto_server() as moto_url:
        registry = CodeRegistry(tmp_path / "zips")
        server = FrontServer(
            0,
            moto_port=int(urlsplit(moto_url).port or 0),
            registry=registry,
            status=lambda: {"token": "t"},
            log=lambda _message: None,
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server, registry
        finally:
            server.shutdown()
            server.server_close()


def test_s3_bytes_and_headers_pass_through_unchanged(front):
    server, _ = front
    make = clients(f"http://127.0.0.1:{server.port}")
    versioned_bucket(make, BUCKET)
    s3 = make("s3")
    data = os.urandom(3 * 1024 * 1024 + 7)  # binary, bigger than one socket buffer
    put = s3.put_object(
        Bucket=BUCKET, Key="blob", Body=data, ChecksumAlgorithm="SHA256", Metadata={"sha256": "x"}
    )
    # HEAD announces the object's size though it carries no body
    head = s3.head_object(Bucket=BUCKET, Key="blob")
    assert head["ContentLength"] == len(data) and head["Metadata"] == {"sha256": "x"}
    got = s3.get_object(Bucket=BUCKET, Key="blob", VersionId=put["VersionId"])["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # A range request is moto's to answer, and it does
    part = s3.get_object(Bucket=BUCKET, Key="blob", Range="bytes=10-19")["Body"].read()
    assert part == data[10:20]


def test_a_chunked_request_body_is_forwarded_whole(front):
    server, _ = front
    versioned_bucket(clients(f"http://127.0.0.1:{server.port}"), BUCKET)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    # WHEN a body arrives in chunks (Transfer-Encoding: chunked)
    conn.request(
        "PUT",
        f"/{BUCKET}/chunked",
        body=iter([b"hello ", b"chunked ", b"world"]),
        headers={"Authorization": f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}"},
        encode_chunked=True,
    )
    assert conn.getresponse().read() is not None
    # THEN moto stored all of it
    s3 = clients(f"http://127.0.0.1:{server.port}")("s3")
    assert s3.get_object(Bucket=BUCKET, Key="chunked")["Body"].read() == b"hello chunked world"


def test_control_plane_calls_teach_the_registry_where_code_lives(front):
    server, registry = front
    make = clients(f"http://127.0.0.1:{server.port}")
    versioned_bucket(make, BUCKET)
    data = make_zip({"h.py": "def handler(e, c):\n    return 1\n"})
    version = make("s3").put_object(Bucket=BUCKET, Key="f.zip", Body=data)["VersionId"]
    created = make("lambda").create_function(
        FunctionName="fn",
        Role=role_arn(make),
        Runtime="python3.12",
        Handler="h.handler",
        Code={"S3Bucket": BUCKET, "S3Key": "f.zip", "S3ObjectVersion": version},
        LoggingConfig={"LogFormat": "JSON"},
        Publish=True,
    )
    assert registry.code_sources(created["CodeSha256"]) == [S3Code(BUCKET, "f.zip", version)]
    assert registry.logging_config("fn", "1").log_format == "JSON"  # moto dropped it


def test_invoke_before_the_runner_exists_is_503_and_the_status_endpoint_answers(front):
    server, _ = front
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/2015-03-31/functions/fn/invocations", body=b"{}")
    assert conn.getresponse().status == 503
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/_localcloud/status")
    assert conn.getresponse().read() == b'{"token": "t"}'
