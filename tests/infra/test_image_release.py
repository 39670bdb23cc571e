"""The ImageRelease dynamic provider (infra/image_release.py), for real: it pushes a
prebuilt layout to Debian's docker-registry on 127.0.0.1, by digest, and reuses what the
repository has. The program's side (mocks) is in test_service.py."""

from __future__ import annotations

import base64
import json

import pytest
from moto import mock_aws

# What pulumi.dynamic.Resource stores in the state; no public API exports it.
from pulumi.dynamic.dynamic import serialize_provider

from infra.image_release import ImageReleaseProvider, push_release
from lambda_pkg.errors import UserError
from lambda_pkg.image import transfer
from lambda_pkg.image.reference import parse_reference
from lambda_pkg.image.registry import Registry
from tests.e2e.image_support import registry_server
from tests.infra.harness import make_image_layout
from tests.processes import run_python

REPOSITORY = "cloud-trading-bot/dev/strategy"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with registry_server(tmp_path_factory.mktemp("registry")) as host:
        yield host


def props(url: str, digest: str, blobs) -> dict:
    return {"repository_url": url, "digest": digest, "blobs": str(blobs)}


def manifest_in(url: str, digest: str) -> bytes:
    raw, _ = Registry(parse_reference(url)).get_manifest(digest)
    return raw


@pytest.mark.e2e
def test_create_pushes_the_image_by_digest_and_names_it_so(registry, tmp_path):
    # GIVEN a prebuilt layout and an empty repository
    digest = make_image_layout(tmp_path / "image")
    url = f"{registry}/{REPOSITORY}"
    # WHEN the provider creates the release
    result = ImageReleaseProvider().create(props(url, digest, tmp_path / "image"))
    # THEN the registry serves the manifest's exact bytes under its digest
    assert manifest_in(url, digest) == (tmp_path / "image/blobs/sha256" / digest[7:]).read_bytes()
    # AND the release names the image by digest, never by a tag
    assert result.id == result.outs["image_uri"] == f"{url}@{digest}"
    assert len(result.outs["uploaded"]) == 3  # two layers and the config


@pytest.mark.e2e
def test_a_code_only_change_uploads_only_the_new_layer_and_config(registry, tmp_path):
    url = f"{registry}/{REPOSITORY}-code"
    provider = ImageReleaseProvider()
    first = make_image_layout(tmp_path / "v1")
    old = provider.create(props(url, first, tmp_path / "v1")).outs
    # GIVEN the same base and another code layer
    second = make_image_layout(tmp_path / "v2", code=b"X = 2\n")
    new = props(url, second, tmp_path / "v2")
    # THEN the diff asks for an update, which uploads the code layer and the config only
    assert provider.diff("id", old, new).changes is True
    outs = provider.update("id", old, new).outs
    manifest = json.loads(manifest_in(url, second))
    code_layer = manifest["layers"][1]["digest"]
    assert set(outs["uploaded"]) == {code_layer, manifest["config"]["digest"]}
    assert outs["image_uri"] == f"{url}@{second}"


def test_an_unchanged_digest_is_no_update_wherever_the_blobs_are(tmp_path):
    # A CI artifact one day, the local cache the next: the same image is not a change.
    digest = "sha256:" + "a" * 64
    provider = ImageReleaseProvider()
    olds = props("host/repo", digest, "/ci/dist/image") | {"image_uri": f"host/repo@{digest}"}
    diff = provider.diff("id", olds, props("host/repo", digest, tmp_path))
    assert diff.changes is False
    # Another repository is a replacement, not an in-place update.
    moved = provider.diff("id", olds, props("host/other", digest, tmp_path))
    assert (moved.changes, moved.replaces) == (True, ["repository_url"])


def test_check_refuses_a_malformed_digest_and_waits_for_unknown_values():
    provider = ImageReleaseProvider()
    bad = provider.check({}, {"digest": "sha256:XYZ", "repository_url": "host/repo"})
    assert [f.property for f in bad.failures] == ["digest"]
    # At preview the repository URL of a repository not created yet is not known.
    unknown = provider.check({}, {"digest": "sha256:" + "b" * 64, "repository_url": object()})
    assert unknown.failures == []


def test_missing_blobs_are_one_line_naming_the_image_and_the_fix(tmp_path):
    digest = "sha256:" + "c" * 64
    with pytest.raises(UserError) as err:
        push_release("127.0.0.1:9/repo", digest, str(tmp_path))
    assert digest in str(err.value) and "CTB_IMAGE_LAYOUT" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_ecr_repository_is_pushed_with_the_ecr_token(tmp_path, monkeypatch):
    # GIVEN an ECR repository URL (moto answers GetAuthorizationToken)
    digest = make_image_layout(tmp_path / "image")
    url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cloud-trading-bot/dev/strategy"
    sent = {}

    def fake_push(manifest, blob_path, target, credentials, mount_from=None):
        sent.update(target=str(target), credentials=credentials)
        return transfer.PushResult(f"{target}@{digest}", digest, (), (), (), 0)

    monkeypatch.setattr(transfer, "push", fake_push)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        outs = push_release(url, digest, str(tmp_path / "image"))
    # THEN the push authenticated with the token's user (ECR's is always AWS)
    assert sent["target"] == url
    assert sent["credentials"].username == "AWS"
    assert outs["image_uri"] == f"{url}@{digest}"


@pytest.mark.e2e
def test_the_serialised_provider_runs_in_its_own_process(registry, tmp_path):
    """As `pulumi up` runs it: dill-loaded from the state in a fresh interpreter started
    in the project directory (the CLI starts providers there), then create."""
    # GIVEN the provider as Pulumi stores it: small, because it is kept by name
    serialized = serialize_provider(ImageReleaseProvider())
    assert len(serialized) < 1000
    digest = make_image_layout(tmp_path / "image")
    url = f"{registry}/{REPOSITORY}-process"
    script = (
        "import base64, dill, json, sys\n"
        "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "result = provider.create(json.loads(sys.argv[2]))\n"
        "print(result.outs['image_uri'])\n"
    )
    # WHEN a fresh interpreter in the project directory loads it and creates the release
    done = run_python("-c", script, serialized, json.dumps(props(url, digest, tmp_path / "image")))
    # THEN the image is pushed
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{url}@{digest}"
    assert manifest_in(url, digest)
    # (the state holds a reference to the class, not its bytecode)
    assert b"infra.image_release" in base64.b64decode(serialized)
