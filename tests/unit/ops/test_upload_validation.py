"""Every validation error: one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import boto3
import pytest

from lambda_pkg import limits
from ops.cli import main
from ops.destination import tags_for
from tests.unit.ops.faultproxy import Fault, FaultProxy, is_method
from tests.unit.ops.helpers import BUCKET, KEY, make_zip, write_test_manifest


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _assert_user_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


def _nothing_written(s3):
    assert "Versions" not in s3.list_object_versions(Bucket=BUCKET)


@pytest.fixture
def raw_s3(bucket):
    return boto3.client("s3", region_name="us-east-1")


def test_missing_file(bucket, tmp_path, capsys):
    code, err = _run(["upload", str(tmp_path / "nope.zip"), bucket, KEY], capsys)
    _assert_user_error(code, err, "nope.zip", "no such file")


def test_not_a_zip(bucket, tmp_path, raw_s3, capsys):
    bad = tmp_path / "lambda_deployment.zip"
    bad.write_text("not a zip")
    code, err = _run(["upload", str(bad), bucket, KEY], capsys)
    _assert_user_error(code, err, "not a zip archive")
    _nothing_written(raw_s3)


def test_unzipped_size_over_the_limit(bucket, package, raw_s3, monkeypatch, capsys):
    # The real limit is 250 MB; a lower one exercises the same comparison quickly.
    monkeypatch.setattr(limits, "UNZIPPED_MAX", 500)
    code, err = _run(["upload", str(package), bucket, KEY], capsys)
    _assert_user_error(code, err, "unzipped size", "exceeds Lambda's limit of 500")
    _nothing_written(raw_s3)


def test_handler_missing(bucket, tmp_path, raw_s3, capsys):
    zip_path = make_zip(tmp_path / "x.zip", handler=False)
    code, err = _run(["upload", str(zip_path), bucket, KEY], capsys)
    _assert_user_error(code, err, "market_data_fetcher.py is not in the package", "--handler-file")
    _nothing_written(raw_s3)


def test_handler_file_is_configurable(bucket, tmp_path, capsys):
    zip_path = make_zip(tmp_path / "x.zip")
    code, err = _run(
        ["upload", str(zip_path), bucket, KEY, "--handler-file", "backend/blob.bin"], capsys
    )
    assert code == 0, err


def test_key_outside_lambda_prefix_is_refused_by_default(bucket, package, raw_s3, capsys):
    code, err = _run(["upload", str(package), bucket, "other/x.zip"], capsys)
    _assert_user_error(code, err, "not under lambda/", "--allow-any-key")
    _nothing_written(raw_s3)


def test_key_outside_lambda_prefix_only_warns_with_the_flag(bucket, package, raw_s3, capsys):
    code = main(["upload", str(package), bucket, "other/x.zip", "--allow-any-key"])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning: KEY 'other/x.zip' is not under lambda/" in captured.err
    assert raw_s3.head_object(Bucket=bucket, Key="other/x.zip")["ContentLength"] > 0
    # Tagged as the project's, but with no environment: it is not lambda/<env>/...
    tags = raw_s3.get_object_tagging(Bucket=bucket, Key="other/x.zip")["TagSet"]
    assert tags == [{"Key": "project", "Value": "cloud-trading-bot"}]


@pytest.mark.parametrize(
    "case",
    [
        # Issue 10: this one uploaded, with an environment tag of '..'.
        ("lambda/dev/../../data/prod/evil.zip", "has a '..' segment"),
        ("lambda/dev/./x.zip", "has a '.' segment"),
        ("lambda//x.zip", "has a '' segment"),
        ("lambda/dev/x.zip\n", "control character(s) '\\n'"),
        ("lambda/dev/\x00.zip", "control character(s)"),
        ("lambda/" + "a" * 1100 + ".zip", "longer than S3's 1024 bytes"),
    ],
)
@pytest.mark.parametrize("flag", [[], ["--allow-any-key"]])
def test_keys_no_flag_lets_through(package, raw_s3, case, flag, capsys):
    key, needle = case
    code, err = _run(["upload", str(package), BUCKET, key, *flag], capsys)
    _assert_user_error(code, err, "KEY", needle)
    _nothing_written(raw_s3)


@pytest.mark.parametrize(
    "case",
    [
        ("lambda/dev.zip", "is not under lambda/<environment>/"),
        ("lambda/Dev/x.zip", "'Dev' is not an environment name"),
        ("lambda/d/x.zip", "'d' is not an environment name"),
        ("lambda/dev/x y.zip", "has the segment 'x y.zip'"),
        ("lambda/dev/package.tar", "does not end in .zip"),
        ("data/prod/x.zip", "is not under lambda/<environment>/"),
    ],
)
def test_keys_outside_a_package_key_are_refused_unless_allowed(package, raw_s3, case, capsys):
    key, needle = case
    code, err = _run(["upload", str(package), BUCKET, key], capsys)
    _assert_user_error(code, err, needle, "--allow-any-key")
    _nothing_written(raw_s3)


def test_the_environment_tag_comes_only_from_a_package_key():
    assert tags_for("lambda/dev/lambda_deployment.zip")["environment"] == "dev"
    assert tags_for("lambda/prod/layers/deps-0123.zip")["environment"] == "prod"
    for key in ("lambda/dev.zip", "lambda/../x.zip", "other/dev/x.zip", "lambda/Dev/x.zip"):
        assert "environment" not in tags_for(key), key


@pytest.mark.parametrize(
    ("bucket_arg", "needle"),
    [
        ("s3://ctb-test-bucket", "without s3://"),
        ("Bad_Bucket", "not a valid S3 bucket name"),
        ("ctb-test-bucket\n", "not a valid S3 bucket name"),
        ("192.168.1.10", "not a valid S3 bucket name"),
        ("xn--bucket", "not a valid S3 bucket name"),
        ("my-bucket-s3alias", "not a valid S3 bucket name"),
        ("a..b", "not a valid S3 bucket name"),
        ("ab", "not a valid S3 bucket name"),
    ],
)
def test_bad_bucket_argument(package, bucket_arg, needle, capsys):
    code, err = _run(["upload", str(package), bucket_arg, KEY], capsys)
    _assert_user_error(code, err, needle)


def test_key_must_be_an_object_key(package, capsys):
    code, err = _run(["upload", str(package), BUCKET, "/lambda/dev/x.zip"], capsys)
    _assert_user_error(code, err, "KEY", "no leading slash")


def test_no_such_bucket(aws, package, capsys):
    code, err = _run(["upload", str(package), "missing-bucket", KEY], capsys)
    _assert_user_error(code, err, "'missing-bucket' does not exist (NoSuchBucket)")


@pytest.mark.parametrize(
    ("fault", "needle", "requests"),
    [
        # moto does not enforce permissions: a real 403 from a local server stands in.
        (
            Fault(is_method("HEAD"), 403, "AccessDenied"),
            "access denied (AccessDenied) to bucket",
            1,
        ),
        (
            Fault(
                is_method("HEAD"),
                301,
                "PermanentRedirect",
                headers={"x-amz-bucket-region": "eu-west-1"},
            ),
            f"bucket '{BUCKET}' is in eu-west-1: pass --region eu-west-1",
            2,  # botocore's S3 region redirector tries the named region once
        ),
        (Fault(is_method("HEAD"), 404, "NoSuchBucket"), f"'{BUCKET}' does not exist", 1),
    ],
)
def test_bucket_errors_are_distinct_one_liners(package, fault, needle, requests, capsys):
    proxy = FaultProxy(faults=[fault])
    with proxy.running():
        code, err = _run(["upload", str(package), BUCKET, KEY, "--endpoint-url", proxy.url], capsys)
    _assert_user_error(code, err, needle)
    assert proxy.count(is_method("HEAD")) == requests  # not retried: the user's to fix


def test_rejected_credentials(capsys):
    # The JSON services say so in the body (HEAD has none).
    post = is_method("POST")
    proxy = FaultProxy(faults=[Fault(post, 400, "UnrecognizedClientException", json=True)])
    with proxy.running():
        argv = ["coldstarts", "--function", "f", "--endpoint-url", proxy.url]
        code, err = _run(argv, capsys)
    _assert_user_error(code, err, "AWS rejected the credentials (UnrecognizedClientException)")
    assert "logs:FilterLogEvents" in err


def test_missing_credentials(package, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    # No instance metadata lookups while hunting for credentials.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, err = _run(["upload", str(package), BUCKET, KEY], capsys)
    _assert_user_error(code, err, "no AWS credentials found")


def test_missing_region(package, monkeypatch, capsys):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    code, err = _run(["upload", str(package), BUCKET, KEY], capsys)
    _assert_user_error(code, err, "no AWS region", "--region")


def test_runtime_flag_contradicting_the_manifest(tmp_path, capsys):
    zip_path = make_zip(tmp_path / "a.zip")
    write_test_manifest(zip_path, tmp_path / "manifest.json")
    code, err = _run(["upload", str(zip_path), BUCKET, KEY, "--runtime", "python3.11"], capsys)
    _assert_user_error(code, err, "--runtime python3.11 contradicts the manifest")


def test_a_manifest_with_wrong_field_types_is_a_user_error(tmp_path, capsys):
    zip_path = make_zip(tmp_path / "a.zip")
    manifest = tmp_path / "manifest.json"
    write_test_manifest(zip_path, manifest)
    manifest.write_text(manifest.read_text().replace('"zip": "a.zip"', '"zip": 5'))
    code, err = _run(["upload", str(zip_path), BUCKET, KEY, "--manifest", str(manifest)], capsys)
    _assert_user_error(code, err, str(manifest), "zip", "-m lambda_pkg build")


def test_zip_changed_since_its_manifest(tmp_path, capsys):
    zip_path = make_zip(tmp_path / "a.zip")
    write_test_manifest(zip_path, tmp_path / "manifest.json", sha256="0" * 64)
    code, err = _run(["upload", str(zip_path), BUCKET, KEY], capsys)
    _assert_user_error(code, err, "does not match its manifest")


_NOWHERE = ["--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "1"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["upload"], "the following arguments are required"),
        (["upload", "a.zip", BUCKET, KEY, "--part-size-mib", "1"], "5 MiB minimum"),
        (["upload", "a.zip", BUCKET, KEY, "--runtime", "python2.7"], "invalid choice"),
        (["upload", "a.zip", BUCKET, KEY, "--max-attempts", "0"], "--max-attempts 0"),
        (["upload", "a.zip", BUCKET, KEY, "--part-size-mib", "x"], "not a whole number of MiB"),
        (["upload", "a.zip", BUCKET, KEY, "--max-concurrency", "0"], "--max-concurrency 0"),
        (["rollback"], "--function"),
        (["rollback", "--function", "f", "--to", "1", "--steps", "2"], "not allowed with"),
        # Refused before any AWS call: the endpoint is unreachable on purpose.
        (
            ["rollback", "--function", "f", "--steps", "0", *_NOWHERE],
            "--steps 0: must be 1 or more",
        ),
        (
            ["rollback", "--function", "f", "--to", "0", *_NOWHERE],
            "--to 0: not a published version",
        ),
    ],
)
def test_bad_command_lines_are_one_line_errors(tmp_path, argv, needle, capsys):
    make_zip(tmp_path / "a.zip")
    argv = [str(tmp_path / a) if a == "a.zip" else a for a in argv]
    code, err = _run(argv, capsys)
    _assert_user_error(code, err, needle)
