import base64
import hashlib
import json

import pytest

from lambda_pkg.artifact import Artifact, find_manifest, load_manifest, write_manifest
from lambda_pkg.errors import UserError


def _artifact(tmp_path, payload=b"zip-bytes", layer=None):
    zip_path = tmp_path / "pkg.zip"
    zip_path.write_bytes(payload)
    return Artifact(
        path=zip_path,
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        unzipped_size=100,
        input_hash="in",
        runtime="python3.12",
        architecture="arm64",
        builder_version="lambda_pkg/1",
        manifest_path=tmp_path / "manifest.json",
        layer=layer,
    )


def test_manifest_round_trips_with_lambda_style_hash(tmp_path):
    art = _artifact(tmp_path)
    write_manifest(art)
    loaded = load_manifest(art.manifest_path)
    assert loaded == art
    assert loaded.sha256_b64 == base64.b64encode(hashlib.sha256(b"zip-bytes").digest()).decode()
    assert json.loads(art.manifest_path.read_text())["sha256_b64"] == loaded.sha256_b64


def test_metadata_is_content_derived_only(tmp_path):
    meta = _artifact(tmp_path).metadata()
    assert set(meta) == {"sha256", "runtime", "architecture", "builder-version"}


def test_a_changed_zip_is_refused(tmp_path):
    art = _artifact(tmp_path)
    write_manifest(art)
    art.path.write_bytes(b"tampered")
    with pytest.raises(UserError, match="does not match its manifest"):
        load_manifest(art.manifest_path)


def test_missing_manifest_says_how_to_fix(tmp_path):
    with pytest.raises(UserError, match="lambda_pkg build"):
        load_manifest(tmp_path / "nope.json")


def test_manifest_missing_fields_names_them(tmp_path):
    (tmp_path / "m.json").write_text('{"zip": "a.zip"}')
    with pytest.raises(UserError, match="missing sha256"):
        load_manifest(tmp_path / "m.json")


def test_find_manifest_prefers_the_stem_manifest_and_needs_its_zip_named(tmp_path):
    # GIVEN the names a build writes beside pkg.zip, plus ones it never writes
    zip_path = tmp_path / "pkg.zip"
    (tmp_path / "pkg.json").write_text(json.dumps({"zip": "pkg.zip"}))
    # THEN a {stem}.json is never taken for a manifest
    assert find_manifest(zip_path) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"zip": "pkg.zip"}))
    assert find_manifest(zip_path) == tmp_path / "manifest.json"
    (tmp_path / "pkg.manifest.json").write_text(json.dumps({"zip": "pkg.zip"}))
    assert find_manifest(zip_path) == tmp_path / "pkg.manifest.json"
    # AND a manifest that describes another zip, or is not a JSON object, does not count
    (tmp_path / "pkg.manifest.json").write_text(json.dumps({"zip": "other.zip"}))
    (tmp_path / "manifest.json").write_text("[1]")
    assert find_manifest(zip_path) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"zip": 5}, "zip"),
        ({"zip": ""}, "zip"),
        ({"size": "x"}, "size"),
        ({"size": None}, "size"),
        ({"unzipped_size": 1.5}, "unzipped_size"),
        ({"sha256": 7}, "sha256"),
        ({"sha256": "not-hex"}, "sha256"),
        ({"runtime": ["python3.12"]}, "runtime"),
        ({"architecture": {}}, "architecture"),
        ({"input_hash": 1}, "input_hash"),
        ({"layer": 5}, "layer"),
        ({"layer": "pkg-layer.zip"}, "layer"),
        ({"layer": {"zip": 5}}, "layer."),
    ],
)
@pytest.mark.parametrize("check", [True, False])
def test_wrong_field_types_are_a_user_error_naming_manifest_and_fix(tmp_path, change, field, check):
    # GIVEN a manifest the builder wrote, then edited by hand
    art = _artifact(tmp_path)
    write_manifest(art)
    data = json.loads(art.manifest_path.read_text())
    data.update(change)
    art.manifest_path.write_text(json.dumps(data))
    # WHEN it is loaded, THEN it is one UserError that names it, the field and the fix
    with pytest.raises(UserError) as info:
        load_manifest(art.manifest_path, check=check)
    message = str(info.value)
    assert str(art.manifest_path) in message
    assert field in message
    assert "rebuild it with 'python -m lambda_pkg build'" in message
