"""The session: botocore's own retries over real HTTP, bounded at N attempts;
region and profile; DEBUG logging without secrets; one-line errors at the CLI."""

from __future__ import annotations

import io
import socket
import sys

import pytest
from botocore.exceptions import ClientError

from ops import debuglog
from ops.cli import main
from ops.failures import explain
from ops.session import AwsSession, AwsSettings, CallLog
from tests.unit.ops.faultproxy import Fault, FaultProxy, is_method
from tests.unit.ops.helpers import KEY, make_zip

HEAD = is_method("HEAD")


def _s3(url: str, attempts: int, calls: CallLog | None = None):
    settings = AwsSettings(region="us-east-1", endpoint_url=url, max_attempts=attempts)
    return AwsSession(settings, calls=calls).s3()


@pytest.mark.parametrize("terminal", [True, False])
def test_503s_over_http_are_retried_within_one_budget(monkeypatch, capsys, terminal):
    # GIVEN a server that answers 503 SlowDown twice, then 200
    proxy = FaultProxy(faults=[Fault(HEAD, 503, "SlowDown", times=2)])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    with proxy.running():
        # WHEN a call is made with a budget of 3 attempts
        _s3(proxy.url, 3).head_bucket(Bucket="some-bucket")
    # THEN botocore retried: exactly 3 requests reached the server, after a backoff
    assert proxy.count(HEAD) == 3
    # Each retry is announced to a person at a terminal; a script's log stays quiet.
    err = capsys.readouterr().err
    assert err.count("retrying") == (2 if terminal else 0)
    if terminal:
        # HEAD answers carry no body, so no error code: the status is all S3 says.
        assert "s3:HeadBucket failed (HTTP 503); retrying (attempt 2 of 3)" in err


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_persistent_503_stops_after_max_attempts(attempts):
    get = is_method("GET")
    proxy = FaultProxy(faults=[Fault(get, 503, "SlowDown")])
    calls = CallLog()
    with proxy.running(), pytest.raises(ClientError) as raised:
        _s3(proxy.url, attempts, calls).get_object(Bucket="some-bucket", Key=KEY)
    # THEN the attempts are bounded by N: no more requests than the budget
    assert proxy.count(get) == attempts
    failure = explain(raised.value, calls.last)
    assert failure is not None and failure.exit_code == 1
    noun = "attempt" if attempts == 1 else "attempts"
    assert failure.message == (
        f"s3:GetObject failed after {attempts} {noun} (SlowDown, HTTP 503); giving up"
    )


def test_retries_back_off_between_attempts():
    proxy = FaultProxy(faults=[Fault(HEAD, 503, "SlowDown", times=2)])
    with proxy.running():
        _s3(proxy.url, 3).head_bucket(Bucket="some-bucket")
    times = [s.at for s in proxy.seen]
    # botocore's standard mode sleeps a random share of 1 s, then of 2 s (full
    # jitter), so the attempts are apart; never 20 s (its cap) in a row here.
    assert len(times) == 3 and times[2] - times[0] < 3.5


def test_exhausted_retries_exit_1_on_one_line(tmp_path, capsys):
    package = make_zip(tmp_path / "lambda_deployment.zip")
    proxy = FaultProxy(faults=[Fault(HEAD, 503, "SlowDown")])
    with proxy.running():
        argv = ["upload", str(package), "some-bucket", KEY, "--endpoint-url", proxy.url]
        code = main([*argv, "--max-attempts", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == "error: s3:HeadBucket failed after 2 attempts (HTTP 503); giving up\n"
    assert proxy.count(HEAD) == 2


def test_a_client_error_is_not_retried(capsys):
    proxy = FaultProxy(faults=[Fault(is_method("GET"), 404, "NoSuchKey")])
    with proxy.running(), pytest.raises(ClientError, match="NoSuchKey"):
        _s3(proxy.url, 5).get_object(Bucket="some-bucket", Key=KEY)
    assert proxy.count(is_method("GET")) == 1


def test_access_denied_is_a_user_error_without_retry():
    proxy = FaultProxy(faults=[Fault(is_method("PUT"), 403, "AccessDenied")])
    calls = CallLog()
    with proxy.running(), pytest.raises(ClientError) as raised:
        _s3(proxy.url, 5, calls).put_object(Bucket="some-bucket", Key=KEY, Body=b"x")
    assert proxy.count(is_method("PUT")) == 1
    failure = explain(raised.value, calls.last)
    assert failure is not None and failure.exit_code == 2
    assert failure.message.startswith(
        f"access denied (AccessDenied) on s3:PutObject s3://some-bucket/{KEY}: "
    )


def test_a_dropped_connection_is_retried_then_exit_1(tmp_path, capsys):
    # GIVEN a server that accepts each request and closes the connection unanswered
    proxy = FaultProxy(faults=[Fault(HEAD, drop=True)])
    package = make_zip(tmp_path / "lambda_deployment.zip")
    with proxy.running():
        argv = ["upload", str(package), "some-bucket", KEY, "--endpoint-url", proxy.url]
        code = main([*argv, "--max-attempts", "3"])
    err = capsys.readouterr().err
    # THEN botocore retried it, 3 attempts in all, and it is the service's trouble
    assert proxy.count(HEAD) == 3
    assert code == 1
    assert err.startswith("error: s3:HeadBucket failed after 3 attempts (")
    assert err.count("\n") == 1


def test_debug_logs_every_call_and_no_secret(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRETvalue/should+never+print")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SESSIONtokenSHOULDnotPRINT")
    monkeypatch.setenv("DEBUG", "true")
    stream = io.StringIO()
    debuglog.enable(stream)
    proxy = FaultProxy()
    try:
        with proxy.running():
            _s3(proxy.url, 5).head_bucket(Bucket="some-bucket")
    finally:
        debuglog.disable()
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
    out = debuglog.redact(header)
    assert "AKIA123" not in out and "abcdef0123" not in out and "tok123" not in out


def test_no_debug_logging_without_the_flag(monkeypatch):
    from lambda_pkg.errors import debug_enabled

    monkeypatch.delenv("DEBUG", raising=False)
    assert not debug_enabled()
    monkeypatch.setenv("DEBUG", "TRUE")
    assert debug_enabled()


def test_aws_region_is_honoured_like_the_aws_cli_does(monkeypatch):
    # botocore alone reads only AWS_DEFAULT_REGION; AWS_REGION is what Lambda and
    # the AWS CLI v2 use, and it wins over AWS_DEFAULT_REGION there too.
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert AwsSession().region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert AwsSession().region == "eu-west-1"
    assert AwsSession(AwsSettings(region="ap-south-1")).region == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    assert AwsSession().region == "us-west-2"


def test_the_retry_budget_is_botocores_standard_mode():
    s3 = AwsSession(AwsSettings(region="us-east-1", max_attempts=7)).s3()
    assert s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_endpoint_is_one_user_error_line(tmp_path, capsys):
    package = make_zip(tmp_path / "lambda_deployment.zip")
    url = f"http://127.0.0.1:{_closed_port()}"
    # WHEN nothing listens at --endpoint-url (an emulator that is not running)
    argv = ["upload", str(package), "some-bucket", KEY, "--endpoint-url", url]
    code = main([*argv, "--max-attempts", "3"])
    err = capsys.readouterr().err
    # THEN, after the retries, one line that says what to check, and exit 2
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: cannot reach {url}/some-bucket (EndpointConnectionError) ")
    assert "s3:HeadBucket after 3 attempts: check --endpoint-url" in err


@pytest.mark.parametrize(
    "url", ["notaurl", "ftp://host", "127.0.0.1:5000", "http://", "http://h:99999", "http://a b"]
)
def test_a_malformed_endpoint_url_is_refused_before_any_call(url, capsys):
    assert main(["rollback", "--function", "f", "--endpoint-url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"argument --endpoint-url: {url!r} is not an http(s) URL" in err


def test_an_unexpected_aws_error_names_the_call_on_one_line(monkeypatch, capsys):
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
