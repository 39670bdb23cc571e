"""The image against a real registry (Debian's docker-registry on 127.0.0.1): push,
pull back, blob reuse, cross-repository mounts, a pinned base pulled over the API."""

from __future__ import annotations

import json
import urllib.request

import pytest

from lambda_pkg.cli import main
from lambda_pkg.errors import UserError
from lambda_pkg.image.base import resolve_base
from lambda_pkg.image.build import ensure_image
from lambda_pkg.image.reference import parse_reference
from lambda_pkg.image.registry import Credentials
from lambda_pkg.image.store import BlobStore
from lambda_pkg.image.transfer import pull
from lambda_pkg.progress import Progress
from tests.e2e.image_support import registry_server
from tests.unit.image.helpers import (
    lock_offline,
    make_base_layout,
    make_service_project,
    make_wheel,
    write,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with registry_server(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheels")
    make_wheel(d, "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 42\n"})
    return d


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    make_base_layout(d)
    return d


@pytest.fixture
def build(wheelhouse, base):
    def _build(project, **kwargs):
        lock_offline(project, wheelhouse)
        kwargs.setdefault("base", base)
        kwargs.setdefault("cache_dir", project / ".build")
        kwargs.setdefault("pip_args", ["--no-index", "--find-links", str(wheelhouse)])
        return ensure_image(project_dir=project, **kwargs)

    return _build


def _manifest_digest(registry: str, repo: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        return str(resp.headers["Docker-Content-Digest"])


def test_push_then_pull_back_gives_the_same_bytes(registry, build, tmp_path):
    image = build(make_service_project(tmp_path / "p"))
    result = image.push(f"{registry}/ctb/strategy:dev")
    assert result.digest == image.digest
    assert set(result.uploaded) == set(image.blobs())
    assert _manifest_digest(registry, "ctb/strategy", "dev") == image.digest
    # Pulled back into an empty store: the same manifest and every blob byte for byte.
    store = BlobStore(tmp_path / "pulled")
    ref = parse_reference(f"{registry}/ctb/strategy@{image.digest}")
    assert pull(ref, "x86_64", store) == image.digest
    for digest in [image.digest, *image.blobs()]:
        assert store.path(digest).read_bytes() == image.blob_path(digest).read_bytes()


def test_a_code_only_rebuild_uploads_only_the_code_layer(registry, build, tmp_path):
    project = make_service_project(tmp_path / "p")
    first = build(project)
    first.push(f"{registry}/ctb/code-only:dev")
    write(project / "backend" / "core.py", "def run():\n    return 3\n")
    second = build(project)
    result = second.push(f"{registry}/ctb/code-only:dev")
    code = second.layers[-1]
    assert set(result.uploaded) == {code.digest, second.config_digest}
    assert set(result.existing) == {x.digest for x in second.layers[:-1]}
    assert result.uploaded_bytes < 64 * 1024
    assert _manifest_digest(registry, "ctb/code-only", "dev") == second.digest


def test_an_unchanged_push_uploads_nothing(registry, build, tmp_path):
    image = build(make_service_project(tmp_path / "p"))
    image.push(f"{registry}/ctb/again:dev")
    result = image.push(f"{registry}/ctb/again:dev")
    assert result.uploaded == () and result.uploaded_bytes == 0
    assert set(result.existing) == set(image.blobs())


def test_another_repository_mounts_the_blobs_instead_of_uploading(registry, build, tmp_path):
    image = build(make_service_project(tmp_path / "p"))
    image.push(f"{registry}/ctb/source:dev")
    result = image.push(f"{registry}/ctb/target:dev", mount_from="ctb/source")
    assert result.uploaded == ()
    assert set(result.mounted) == set(image.blobs())


def test_a_pinned_base_is_pulled_over_the_api_once(build, base, tmp_path):
    project = make_service_project(tmp_path / "p")
    from_layout = build(project, cache_dir=tmp_path / "c1")
    with registry_server(tmp_path / "reg") as host:
        # Publish the base, then build on it by digest in a fresh cache.
        base_image = resolve_base(
            str(base), runtime="python3.12", architecture="x86_64",
            store=BlobStore(tmp_path / "c0"), progress=Progress(False),
        )  # fmt: skip
        from lambda_pkg.image.transfer import push

        store = BlobStore(tmp_path / "c0")
        push(store.read(base_image.digest), store.path, parse_reference(f"{host}/library/base:1"))
        pinned = f"{host}/library/base@{base_image.digest}"
        pulled = build(project, base=pinned, cache_dir=tmp_path / "c2")
    # The same image as from the layout: the base is the same bytes however it arrived.
    assert pulled.digest == from_layout.digest
    # The registry is gone: the pulled base is served from the cache.
    write(project / "backend" / "core.py", "def run():\n    return 4\n")
    again = build(project, base=pinned, cache_dir=tmp_path / "c2")
    assert again.base_digest == pulled.base_digest
    with pytest.raises(UserError, match=r"^cannot pull --base .*--base local"):
        build(project, base=pinned, cache_dir=tmp_path / "c3")


def test_the_cli_pushes_and_reports_what_it_sent(registry, wheelhouse, base, tmp_path, capsys):
    project = make_service_project(tmp_path / "p")
    lock_offline(project, wheelhouse)
    args = [
        "image", "--source", str(project), "--base", str(base), "--json",
        "--pip-arg=--no-index", f"--pip-arg=--find-links={wheelhouse}",
        "--push", f"{registry}/ctb/cli:v1",
    ]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["push"]["reference"] == f"{registry}/ctb/cli:v1@{result['digest']}"
    assert len(result["push"]["uploaded"]) == len(result["layers"]) + 1
    assert _manifest_digest(registry, "ctb/cli", "v1") == result["digest"]


def test_a_registry_that_asks_for_credentials_gets_them_once_challenged(build, tmp_path):
    # Basic authentication, as ECR does with GetAuthorizationToken's user and password.
    image = build(make_service_project(tmp_path / "p"))
    with registry_server(tmp_path / "reg", basic_auth=True) as host:
        with pytest.raises(UserError, match=r"^push to .*: HEAD .*: HTTP 401"):
            image.push(f"{host}/ctb/private:1")
        with pytest.raises(UserError, match=r"HTTP 401"):
            image.push(f"{host}/ctb/private:1", Credentials("ctb", "wrong"))
        result = image.push(f"{host}/ctb/private:1", Credentials("ctb", "s3cret"))
        assert set(result.uploaded) == set(image.blobs())
        pulled = BlobStore(tmp_path / "pulled")
        ref = parse_reference(f"{host}/ctb/private@{image.digest}")
        assert pull(ref, "x86_64", pulled, Credentials("ctb", "s3cret")) == image.digest
