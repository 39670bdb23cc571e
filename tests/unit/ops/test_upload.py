"""Upload against moto in-process: happy path, skip-unchanged, multipart, interruption."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import threading

import boto3
import pytest

from lambda_pkg import BUILDER_VERSION
from lambda_pkg.progress import Progress
from ops.checksums import MiB, composite_sha256, hash_file, layout_for, part_ranges, same_checksum
from ops.cli import main
from ops.package import inspect_package
from ops.upload import TransferSettings, upload
from tests.unit.ops.helpers import BUCKET, KEY, make_zip, write_test_manifest

PART = 5 * MiB  # S3's (and s3transfer's) smallest part


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _count_body_bytes(client) -> list[int]:
    """Body bytes actually handed to the HTTP layer, per request."""
    sent: list[int] = []

    def hook(request, **_):
        # What goes on the wire: Content-Length, or for a body streamed with its
        # checksum in a trailer (aws-chunked, over https) the decoded length.
        headers = request.headers
        length = headers.get("x-amz-decoded-content-length") or headers.get("Content-Length")
        sent.append(int(length or 0))

    client.meta.events.register("before-send.s3.*", hook)
    return sent


def _multipart(path, *, parts: int = 5, threshold: int = PART):
    """A package of `parts` 5 MiB parts (the last one short), inspected for that layout."""
    zip_path = make_zip(path, payload=(parts - 1) * PART + 1000)
    return inspect_package(zip_path, multipart_threshold=threshold, part_size=PART)


def test_upload_stores_checksum_metadata_tags_and_prints_next_steps(bucket, package, capsys):
    # GIVEN a package and a versioned bucket
    # WHEN it is uploaded through the CLI
    code = main(["upload", str(package), bucket, KEY])
    out = capsys.readouterr().out
    # THEN it succeeds and prints the URL, the version id and the next steps
    assert code == 0
    s3 = boto3.client("s3", region_name="us-east-1")
    head = s3.head_object(Bucket=BUCKET, Key=KEY, ChecksumMode="ENABLED")
    data = package.read_bytes()
    assert head["ChecksumSHA256"] == _b64(data)
    assert head["Metadata"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "runtime": "python3.12",
        "architecture": "x86_64",
        "builder-version": BUILDER_VERSION,
    }
    tags = s3.get_object_tagging(Bucket=BUCKET, Key=KEY)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "project": "cloud-trading-bot",
        "environment": "dev",
    }
    assert f"uploaded s3://{BUCKET}/{KEY}" in out
    assert f"version id  {head['VersionId']}" in out
    assert "next steps:" in out
    assert f"--s3-object-version {head['VersionId']}" in out
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == data


def test_identical_reupload_sends_zero_bytes_and_says_so(bucket, package, s3):
    pkg = inspect_package(package)
    first = upload(s3, pkg, bucket, KEY)
    sent = _count_body_bytes(s3)
    # WHEN the same bytes are uploaded again
    second = upload(s3, pkg, bucket, KEY)
    # THEN nothing is sent and the existing version is reported
    assert second.skipped and second.bytes_sent == 0
    assert sum(sent) == 0
    assert second.version_id == first.version_id
    versions = s3.list_object_versions(Bucket=bucket, Prefix=KEY)["Versions"]
    assert len(versions) == 1


def test_skip_message_on_the_cli(bucket, package, capsys):
    assert main(["upload", str(package), bucket, KEY]) == 0
    capsys.readouterr()
    assert main(["upload", str(package), bucket, KEY]) == 0
    assert "unchanged:" in capsys.readouterr().out


def test_changed_content_creates_a_new_version(bucket, tmp_path, s3):
    first = upload(s3, inspect_package(make_zip(tmp_path / "a.zip")), bucket, KEY)
    second = upload(s3, inspect_package(make_zip(tmp_path / "b.zip")), bucket, KEY)
    assert not second.skipped and second.bytes_sent > 0
    assert second.version_id != first.version_id


def test_same_bytes_with_a_different_runtime_is_uploaded_again(bucket, package, s3):
    # Metadata is part of what "unchanged" means: the stack compares it too.
    upload(s3, inspect_package(package, runtime="python3.12"), bucket, KEY)
    again = upload(s3, inspect_package(package, runtime="python3.11"), bucket, KEY)
    assert not again.skipped
    head = s3.head_object(Bucket=bucket, Key=KEY)
    assert head["Metadata"]["runtime"] == "python3.11"


def test_force_uploads_even_when_unchanged(bucket, package, s3):
    pkg = inspect_package(package)
    upload(s3, pkg, bucket, KEY)
    assert not upload(s3, pkg, bucket, KEY, force=True).skipped


def test_multipart_upload_has_composite_checksum_and_verifies(bucket, tmp_path, s3):
    # GIVEN a package above the threshold
    pkg = _multipart(tmp_path / "big.zip")
    sent = _count_body_bytes(s3)
    # WHEN it is uploaded in parts (s3transfer, in parallel)
    result = upload(s3, pkg, bucket, KEY, transfer=TransferSettings(PART, PART))
    # THEN S3's composite checksum equals the one computed locally from the parts
    data = pkg.path.read_bytes()
    chunks = [data[o : o + n] for o, n in part_ranges(len(data), PART)]
    expected = composite_sha256([hashlib.sha256(c).digest() for c in chunks])
    assert result.parts == len(chunks) == 5
    assert result.checksum == expected and expected.endswith("-5")
    assert result.bytes_sent == len(data)
    # AND each part went up once, with its own SHA-256 (what S3 checks per part)
    assert sorted(sent, reverse=True)[:5] == sorted(map(len, chunks), reverse=True)
    # AND the object is whole, with metadata, and no upload is left open
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == data
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    # AND an identical re-upload is skipped
    again = upload(s3, pkg, bucket, KEY, transfer=TransferSettings(PART, PART))
    assert again.skipped and again.bytes_sent == 0


def test_composite_checksum_matches_s3s_definition():
    # SHA-256 over the concatenated raw part digests, base64, then -<parts>.
    parts = [b"a" * 10, b"b" * 3]
    digests = [hashlib.sha256(p).digest() for p in parts]
    combined = base64.b64encode(hashlib.sha256(digests[0] + digests[1]).digest()).decode()
    assert composite_sha256(digests) == f"{combined}-2"


def test_part_ranges_cover_the_file_and_respect_10000_parts():
    ranges = part_ranges(25, 10)
    assert ranges == [(0, 10), (10, 10), (20, 5)]
    huge = part_ranges(10_001 * 10, 10)
    assert len(huge) <= 10_000
    assert sum(n for _, n in huge) == 10_001 * 10


def test_the_layout_is_s3transfers_own():
    # Multipart from the threshold on (s3transfer uses >=), parts of at least 5 MiB...
    assert not layout_for(16 * MiB - 1, threshold=16 * MiB, part_size=8 * MiB).multipart
    assert layout_for(16 * MiB, threshold=16 * MiB, part_size=8 * MiB).parts == 2
    assert layout_for(20 * MiB, threshold=1, part_size=1).part_size == 5 * MiB
    # ...and never more than 10,000 of them: the part size doubles, as s3transfer's does.
    size = 10_001 * 8 * MiB
    layout = layout_for(size, threshold=16 * MiB, part_size=8 * MiB)
    assert layout.part_size == 16 * MiB and layout.parts <= 10_000
    assert sum(n for _, n in layout.ranges()) == size


@pytest.fixture
def interrupt_after_part():
    """Ctrl-C as a person would press it: SIGINT, to the main thread (where the
    terminal's signal lands and Python raises KeyboardInterrupt) while the parts are on
    their way in s3transfer's worker threads. The worker that sent it waits until the
    main thread has raised: on a loaded machine it could otherwise send the next part,
    and complete the upload, before the main thread ran at all."""
    raised = threading.Event()

    def on_sigint(signum, frame):
        raised.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)

    def arm(client, number: int) -> None:
        def send_sigint(context, **_):
            if context.get("ops_part_number") == number:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                assert raised.wait(30), "the main thread never handled the SIGINT"

        client.meta.events.register("after-call.s3.UploadPart", send_sigint)

    yield arm
    signal.signal(signal.SIGINT, previous)


def test_interrupted_multipart_upload_leaves_nothing_visible(
    bucket, tmp_path, s3, interrupt_after_part
):
    pkg = _multipart(tmp_path / "big.zip")
    interrupt_after_part(s3, 2)
    # WHEN the user presses Ctrl-C during the second part
    with pytest.raises(KeyboardInterrupt) as raised:
        upload(s3, pkg, bucket, KEY, transfer=TransferSettings(PART, PART, max_concurrency=1))
    # THEN no object exists, no multipart upload lingers, and the message says so
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key=KEY)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    (note,) = raised.value.__notes__
    assert note == f"upload interrupted: multipart upload aborted; s3://{bucket}/{KEY} is unchanged"


def test_interrupt_keeps_the_previous_version_current(bucket, tmp_path, s3, interrupt_after_part):
    old = upload(s3, inspect_package(make_zip(tmp_path / "old.zip")), bucket, KEY)
    new = _multipart(tmp_path / "new.zip", parts=2)
    interrupt_after_part(s3, 1)
    with pytest.raises(KeyboardInterrupt):
        upload(s3, new, bucket, KEY, transfer=TransferSettings(PART, PART, max_concurrency=1))
    assert s3.head_object(Bucket=bucket, Key=KEY)["VersionId"] == old.version_id


def test_interrupted_single_put_says_nothing_changed(bucket, package, s3):
    # A single PUT runs in the calling thread, where Ctrl-C lands: it stops there.
    def interrupt(**_):
        raise KeyboardInterrupt

    s3.meta.events.register("before-parameter-build.s3.PutObject", interrupt)
    with pytest.raises(KeyboardInterrupt) as raised:
        upload(s3, inspect_package(package), bucket, KEY)
    assert raised.value.__notes__ == [f"upload interrupted: s3://{bucket}/{KEY} is unchanged"]
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


def test_cli_reports_interrupt_with_exit_130(bucket, tmp_path, monkeypatch, capsys):
    package = make_zip(tmp_path / "lambda_deployment.zip")

    def boom(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("ops.upload.upload", boom)
    assert main(["upload", str(package), bucket, KEY]) == 130
    assert capsys.readouterr().err == "error: interrupted: stopped before finishing (SIGINT)\n"


def test_manifest_beside_the_zip_supplies_the_metadata(bucket, tmp_path, s3):
    # GIVEN a build with its manifest (as the packager writes it)
    zip_path = make_zip(tmp_path / "abc.zip")
    art = write_test_manifest(
        zip_path,
        tmp_path / "manifest.json",
        runtime="python3.11",
        architecture="arm64",
        builder_version="lambda_pkg/test",
    )
    # WHEN the zip is inspected without naming the manifest
    pkg = inspect_package(zip_path)
    # THEN the builder's metadata is used, exactly
    assert pkg.manifest == tmp_path / "manifest.json"
    assert pkg.metadata == art.metadata()
    upload(s3, pkg, bucket, KEY)
    assert s3.head_object(Bucket=bucket, Key=KEY)["Metadata"] == art.metadata()


def test_a_manifest_for_another_zip_is_ignored(tmp_path):
    zip_path = make_zip(tmp_path / "mine.zip")
    (tmp_path / "manifest.json").write_text(json.dumps({"zip": "other.zip"}))
    assert inspect_package(zip_path).manifest is None


def test_the_manifest_build_output_writes_wins_over_a_stale_manifest_json(tmp_path):
    # GIVEN pkg.zip with its own pkg.manifest.json, and an older manifest.json that
    # also names pkg.zip but other bytes (as `verify` looks them up: stem first)
    zip_path = make_zip(tmp_path / "pkg.zip")
    art = write_test_manifest(zip_path, tmp_path / "pkg.manifest.json", runtime="python3.11")
    write_test_manifest(zip_path, tmp_path / "manifest.json", sha256="0" * 64)
    # WHEN the zip is inspected without naming the manifest
    pkg = inspect_package(zip_path)
    # THEN the build's own manifest is used, not the stale one
    assert pkg.manifest == tmp_path / "pkg.manifest.json"
    assert pkg.metadata == art.metadata()


def test_a_stem_json_is_not_a_manifest(tmp_path):
    zip_path = make_zip(tmp_path / "pkg.zip")
    write_test_manifest(zip_path, tmp_path / "pkg.json", runtime="python3.11")
    assert inspect_package(zip_path).manifest is None


def test_json_output(bucket, package, capsys):
    assert main(["upload", str(package), bucket, KEY, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["url"] == f"s3://{BUCKET}/{KEY}"
    assert result["sha256_b64"] == _b64(package.read_bytes())
    assert result["skipped"] is False and result["version_id"]


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("versioning", [None, "Suspended"])
@pytest.mark.parametrize("threshold", ["16", "5"])  # single PUT; multipart
def test_unversioned_bucket_warns(tmp_path, s3, capsys, versioning, threshold):
    # GIVEN a bucket without versioning (or with it suspended): S3 then answers a
    # multipart upload with the version id "null", which cannot be pinned or asked for
    s3.create_bucket(Bucket="plain-bucket")
    if versioning:
        s3.put_bucket_versioning(
            Bucket="plain-bucket", VersioningConfiguration={"Status": versioning}
        )
    package = make_zip(tmp_path / "lambda_deployment.zip", payload=6 * 1024 * 1024)
    argv = ["upload", str(package), "plain-bucket", KEY, "--multipart-threshold-mib", threshold]
    # WHEN it is uploaded, twice
    assert main(argv) == 0
    captured = capsys.readouterr()
    # THEN it is verified and says the version cannot be pinned
    assert "versioning off" in captured.err
    assert "versioning is off" in captured.out
    assert "--s3-object-version" not in captured.out
    assert main(argv) == 0
    assert "unchanged" in capsys.readouterr().out


class _FakeTTY:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_bar_draws_only_on_a_terminal():
    tty = _FakeTTY()
    bar = Progress.on_terminal(tty).meter("upload", 100)
    bar(50)
    bar(50)
    assert "50%" in tty.text and "100%" in tty.text and tty.text.endswith("\n")
    quiet = _FakeTTY()
    quiet.isatty = lambda: False
    Progress.on_terminal(quiet).meter("upload", 100)(100)
    assert quiet.text == ""


def test_the_meter_takes_rewinds_and_parallel_parts(tmp_path):
    # s3transfer reports negative amounts when a retried part rewinds its body.
    tty = _FakeTTY()
    bar = Progress(enabled=True, stream=tty).meter("upload", 4 * MiB)
    bar(3 * MiB)
    bar(-2 * MiB)
    assert " 25% 1.0/4.0 MiB" in tty.text.rsplit("\r", 1)[-1]
    bar(3 * MiB)
    assert tty.text.endswith("100% 4.0/4.0 MiB\n")


def test_a_stored_object_with_a_wrong_checksum_is_not_unchanged(bucket, package, s3):
    # GIVEN the key holds the same bytes and metadata but a wrong checksum (moto
    # stores whatever checksum it is sent, like a corrupt or forged upload)
    pkg = inspect_package(package)
    wrong = base64.b64encode(b"\1" * 32).decode()
    s3.put_object(
        Bucket=bucket,
        Key=KEY,
        Body=package.read_bytes(),
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=wrong,
        Metadata=pkg.metadata,
    )
    assert s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")["ChecksumSHA256"] == wrong
    # WHEN uploading, THEN it is not skipped and the new version verifies
    result = upload(s3, pkg, bucket, KEY)
    assert not result.skipped and result.checksum == pkg.sha256_b64


def test_same_checksum_accepts_a_composite_with_or_without_its_suffix():
    assert same_checksum("abc=-3", "abc=-3")
    assert same_checksum("abc=", "abc=-3")  # moto's HeadObject drops the suffix
    assert not same_checksum("abc=-2", "abc=-3")
    assert not same_checksum("abd=", "abc=-3")
    assert not same_checksum(None, "abc=")
    assert not same_checksum("abc=-3", "abc=")  # a whole-file checksum has no suffix


def test_hash_file_gives_the_sha256_and_part_digests(tmp_path):
    data = bytes(range(256)) * 100
    path = tmp_path / "f"
    path.write_bytes(data)
    whole, parts = hash_file(path, 1000)
    assert whole == hashlib.sha256(data).hexdigest()
    assert parts == [hashlib.sha256(data[o : o + 1000]).digest() for o in range(0, len(data), 1000)]


def test_an_object_without_a_sha256_checksum_is_judged_by_its_metadata(bucket, package, s3):
    # GIVEN the object was written by another tool (pulumi up) with the same
    # content-derived metadata but no SHA-256 checksum
    pkg = inspect_package(package)
    s3.put_object(Bucket=bucket, Key=KEY, Body=package.read_bytes(), Metadata=pkg.metadata)
    # THEN the uploader does not create a second version of the same bytes
    assert upload(s3, pkg, bucket, KEY).skipped


def test_next_steps_name_the_environments_function(bucket, package, capsys):
    assert main(["upload", str(package), bucket, KEY, "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    steps = out.split("next steps:", 1)[1]
    assert "--function-name market_data_fetcher-dev" in steps
    assert "--publish --region us-east-1" in steps  # works as printed: same region
    assert f"status --function market_data_fetcher-dev --alias '' --bucket {bucket}" in steps
    assert "invoke --function market_data_fetcher-dev --region us-east-1" in steps
    assert "scripts/deploy.sh --stack dev" in steps
    # The venv's interpreter, not a bare `python` that may lack boto3.
    assert " -m ops status " in steps and "python -m lambda_pkg" not in steps


def test_printed_commands_carry_the_endpoint_and_profile_from_the_environment(
    tmp_path, monkeypatch
):
    from ops.session import AwsSession

    # GIVEN a profile and an endpoint that come from the environment, not from flags
    config = tmp_path / "config"
    config.write_text("[profile ci]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "ci")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    session = AwsSession()
    # THEN what a printed command must repeat is known: botocore honours the
    # endpoint variables, and pasted later without them the command reaches AWS
    assert session.region == "eu-west-1" and session.profile == "ci"
    assert session.configured_endpoint("lambda") == "http://127.0.0.1:4566"
    assert session.lambda_().meta.endpoint_url == "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9000")
    assert session.configured_endpoint("lambda") == "http://127.0.0.1:9000"
