"""The client factory: one retry budget over real HTTP, DEBUG logging without secrets."""

from __future__ import annotations

import io
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ops import session as awsclient
from ops.session import Aws, AwsSettings, RetriesExhausted, redact


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 SlowDown to the first `failures` requests, then 200."""

    failures = 0
    seen = 0

    def do_HEAD(self):
        type(self).seen += 1
        status = 503 if type(self).seen <= type(self).failures else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def flaky_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _s3(url, attempts):
    client = Aws(AwsSettings(region="us-east-1", endpoint_url=url, max_attempts=attempts)).client(
        "s3"
    )
    client._sleep = lambda _s: None  # keep the test fast; the delays are tested elsewhere
    return client


@pytest.mark.parametrize("terminal", [True, False])
def test_503s_over_http_are_retried_within_one_budget(flaky_server, monkeypatch, capsys, terminal):
    url = flaky_server
    _Flaky.failures, _Flaky.seen = 2, 0
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    s3 = _s3(url, 4)
    s3.head_bucket(Bucket="some-bucket")
    # botocore's own retries are off: exactly our attempts reach the server.
    assert _Flaky.seen == 3
    # Each retry is announced to a person at a terminal; a script's log stays quiet.
    assert capsys.readouterr().err.count("retrying in") == (2 if terminal else 0)


def test_persistent_503_stops_after_max_attempts(flaky_server, monkeypatch):
    url = flaky_server
    _Flaky.failures, _Flaky.seen = 100, 0
    s3 = _s3(url, 3)
    with pytest.raises(RetriesExhausted, match="failed after 3 attempts"):
        s3.head_bucket(Bucket="some-bucket")
    assert _Flaky.seen == 3


def test_debug_logs_every_call_and_no_secret(flaky_server, monkeypatch):
    url = flaky_server
    _Flaky.failures, _Flaky.seen = 0, 0
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRETvalue/should+never+print")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SESSIONtokenSHOULDnotPRINT")
    monkeypatch.setenv("DEBUG", "true")
    stream = io.StringIO()
    awsclient.enable_debug_logging(stream)
    try:
        s3 = Aws(AwsSettings(region="us-east-1", endpoint_url=url)).client("s3")
        s3.head_bucket(Bucket="some-bucket")
    finally:
        awsclient.disable_debug_logging()
    text = stream.getvalue()
    assert "call s3:HeadBucket {'Bucket': 'some-bucket'}" in text
    assert "done s3:HeadBucket HTTP 200" in text
    assert "Credential=<redacted>" in text  # botocore did log the signed headers
    for secret in ("AKIAEXAMPLEKEYID1234", "SECRETvalue", "SESSIONtokenSHOULDnotPRINT"):
        assert secret not in text


def test_redact_patterns():
    header = (
        "{'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIA123/20260101/us-east-1/s3/"
        "aws4_request, SignedHeaders=host, Signature=abcdef0123', "
        "'X-Amz-Security-Token': b'tok123'}"
    )
    out = redact(header)
    assert "AKIA123" not in out and "abcdef0123" not in out and "tok123" not in out


def test_no_debug_logging_without_the_flag(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    assert not awsclient.debug_enabled()
    monkeypatch.setenv("DEBUG", "TRUE")
    assert awsclient.debug_enabled()


def test_aws_region_is_honoured_like_the_aws_cli_does(monkeypatch):
    # botocore alone reads only AWS_DEFAULT_REGION; AWS_REGION is what Lambda and
    # the AWS CLI v2 use, and it wins over AWS_DEFAULT_REGION there too.
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert Aws().region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert Aws().region == "eu-west-1"
    assert Aws(AwsSettings(region="ap-south-1")).region == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    assert Aws().region == "us-west-2"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_endpoint_is_one_user_error_line(tmp_path, capsys, monkeypatch):
    from ops.cli import main
    from tests.unit.ops.helpers import KEY, make_zip

    monkeypatch.setattr(awsclient, "BASE_DELAY", 0.001)
    package = make_zip(tmp_path / "lambda_deployment.zip")
    url = f"http://127.0.0.1:{_closed_port()}"
    # WHEN nothing listens at --endpoint-url (an emulator that is not running)
    code = main(["upload", str(package), "some-bucket", KEY, "--endpoint-url", url])
    err = capsys.readouterr().err
    # THEN, after the retries, one line that says what to check, and exit 2
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: cannot reach {url}/some-bucket (EndpointConnectionError) ")
    assert "s3:HeadBucket after 5 attempts: check --endpoint-url" in err


@pytest.mark.parametrize("url", ["notaurl", "ftp://host", "127.0.0.1:5000", "http://"])
def test_a_malformed_endpoint_url_is_refused_before_any_call(url, capsys):
    from ops.cli import main

    assert main(["rollback", "--function", "f", "--endpoint-url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"argument --endpoint-url: {url!r} is not an http(s) URL" in err


def test_an_unexpected_aws_error_names_the_call_on_one_line(monkeypatch, capsys):
    from botocore.exceptions import ClientError

    from ops.cli import main

    def bad_request(*_a, **_k):
        raise ClientError(
            {"Error": {"Code": "InvalidArgument", "Message": "Bad\nthing"},
             "ResponseMetadata": {"HTTPStatusCode": 400}},
            "ListVersionsByFunction",
        )  # fmt: skip

    monkeypatch.setattr("ops.rollback.rollback", bad_request)
    monkeypatch.delenv("DEBUG", raising=False)
    assert main(["rollback", "--function", "f"]) == 1
    assert capsys.readouterr().err == (
        "error: AWS ListVersionsByFunction failed: InvalidArgument Bad thing (HTTP 400) "
        "(run with DEBUG=true for details)\n"
    )
