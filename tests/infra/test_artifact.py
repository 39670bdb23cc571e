"""infra.artifact: a prebuilt manifest, or the packager's cached build, fitted to the stack."""

from __future__ import annotations

import pytest

import lambda_pkg.api
from infra.artifact import MANIFEST_ENV, PROJECT_DIR, get_artifact
from infra.config import ConfigError, parse_config
from lambda_pkg.errors import UserError
from tests.infra.harness import make_artifact


@pytest.fixture
def cfg():
    return parse_config({}, stack="dev")


def test_manifest_env_deploys_the_prebuilt_package_without_building(monkeypatch, tmp_path, cfg):
    built = make_artifact(tmp_path)
    monkeypatch.setenv(MANIFEST_ENV, str(built.manifest_path))

    def no_build(**_kwargs):
        raise AssertionError("must not build when a manifest is given")

    monkeypatch.setattr(lambda_pkg.api, "ensure_artifact", no_build)
    artifact = get_artifact(cfg)
    assert artifact.sha256 == built.sha256
    assert artifact.path == built.path


def test_without_manifest_the_cached_build_gets_the_stack_settings(monkeypatch, tmp_path):
    cfg = parse_config(
        {"runtime": "python3.11", "architecture": "arm64", "dependencyLayer": "true"},
        stack="dev",
    )
    monkeypatch.delenv(MANIFEST_ENV, raising=False)
    built = make_artifact(tmp_path, runtime="python3.11", architecture="arm64", layer=True)
    calls = []

    def ensure_artifact(**kwargs):
        calls.append(kwargs)
        return built

    monkeypatch.setattr(lambda_pkg.api, "ensure_artifact", ensure_artifact)
    assert get_artifact(cfg) is built
    assert calls == [
        {
            "project_dir": PROJECT_DIR,
            "runtime": "python3.11",
            "architecture": "arm64",
            "layer": True,
        }
    ]


def test_packager_user_error_becomes_a_one_line_config_error(monkeypatch, cfg):
    monkeypatch.delenv(MANIFEST_ENV, raising=False)

    def fails(**_kwargs):
        raise UserError("package is 61 MB zipped, over the 50 MiB direct upload limit")

    monkeypatch.setattr(lambda_pkg.api, "ensure_artifact", fails)
    with pytest.raises(ConfigError, match=r"^Lambda package: package is 61 MB") as err:
        get_artifact(cfg)
    assert err.value.__cause__ is None and err.value.__suppress_context__


@pytest.mark.parametrize(
    ("built_with", "stack_sets", "expected"),
    [
        ({"runtime": "python3.11"}, {}, "runtime python3.11 but the stack's runtime is python3.12"),
        ({"architecture": "arm64"}, {}, "architecture arm64 but"),
        ({"layer": True}, {}, "a dependency layer but the stack sets dependencyLayer: false"),
        ({}, {"dependencyLayer": "true"}, "no dependency layer but the stack sets"),
    ],
)
def test_a_package_that_does_not_fit_the_stack_is_refused(
    monkeypatch, tmp_path, built_with, stack_sets, expected
):
    built = make_artifact(tmp_path, **built_with)
    monkeypatch.setenv(MANIFEST_ENV, str(built.manifest_path))
    with pytest.raises(ConfigError, match=expected):
        get_artifact(parse_config(stack_sets, stack="dev"))


def test_a_zip_changed_after_the_build_is_refused(monkeypatch, tmp_path, cfg):
    built = make_artifact(tmp_path)
    built.path.write_bytes(b"not the bytes that were built")
    monkeypatch.setenv(MANIFEST_ENV, str(built.manifest_path))
    with pytest.raises(ConfigError, match="does not match its manifest"):
        get_artifact(cfg)
