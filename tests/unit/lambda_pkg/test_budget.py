import os

import pytest

from lambda_pkg import limits
from lambda_pkg.budget import Distribution, Sizes, assess, check_unzipped
from lambda_pkg.errors import UserError

from .conftest import write

DISTS = [
    Distribution("pandas", "2", "p.whl", "", unzipped=60_000_000, zipped=20_000_000),
    Distribution("numpy", "2", "n.whl", "", unzipped=40_000_000, zipped=15_000_000),
    Distribution("boto3", "1", "b.whl", "", unzipped=1_000_000, zipped=300_000),
]


def test_unzipped_limit_is_inclusive():
    # exactly at the limit: fine
    assess(Sizes(zipped=1, unzipped=limits.UNZIPPED_MAX), [], architecture="arm64", layer=False)
    # one byte over, counting the layer too: refused, naming the largest distributions
    with pytest.raises(UserError, match=r"262,144,001 bytes unzipped.*largest: pandas 60\.0 MB"):
        assess(
            Sizes(zipped=1, unzipped=limits.UNZIPPED_MAX - 9, layer_unzipped=10),
            DISTS,
            architecture="arm64",
            layer=True,
        )


def test_direct_upload_limit_recommends_s3_only_when_over():
    at = assess(
        Sizes(zipped=limits.DIRECT_UPLOAD_ZIPPED_MAX, unzipped=1),
        [],
        architecture="arm64",
        layer=False,
    )
    assert not any("needs S3" in r for r in at.recommendations)
    assert any("close to" in w for w in at.warnings)  # but it warns: over 80%
    over = assess(
        Sizes(zipped=limits.DIRECT_UPLOAD_ZIPPED_MAX + 1, unzipped=1),
        [],
        architecture="arm64",
        layer=False,
    )
    assert any(r.startswith("needs S3 deployment") for r in over.recommendations)


def test_recommendations_boto3_layer_and_arm64():
    sizes = Sizes(
        zipped=36_000_000, unzipped=101_000_000, deps_zipped=35_000_000, code_zipped=1_000
    )
    report = assess(sizes, DISTS, architecture="x86_64", layer=False)
    text = "\n".join(report.recommendations)
    assert "leave boto3 out" in text
    assert "saves 1.0 MB" in text
    assert "use the dependency layer" in text
    assert "arm64" in text
    assert [d.name for d in report.distributions] == ["pandas", "numpy", "boto3"]
    # none of them when they do not apply
    quiet = assess(Sizes(zipped=10, unzipped=10), [], architecture="arm64", layer=True)
    assert quiet.recommendations == []


def test_a_synthetic_oversize_package_fails_the_build_and_writes_nothing(
    tmp_path, build, monkeypatch
):
    # GIVEN a project with a 3 MB data file, and the unzipped limit lowered to 2 MB
    project = write(tmp_path / "p" / "backend" / "blob.bin", os.urandom(3_000_000)).parents[1]
    write(project / "aws" / "market_data_fetcher.py", "def handler(e, c): pass\n")
    monkeypatch.setattr(limits, "UNZIPPED_MAX", 2_000_000)
    # WHEN it is built, THEN it is refused and no artifact appears
    with pytest.raises(UserError, match="package too large"):
        build(project, requirements=None)
    assert not list((project / ".build").glob("artifacts/*"))


def test_a_synthetic_large_zip_is_reported_over_the_direct_upload_limit(
    tmp_path, build, monkeypatch
):
    project = write(tmp_path / "p" / "backend" / "blob.bin", os.urandom(300_000)).parents[1]
    monkeypatch.setattr(limits, "DIRECT_UPLOAD_ZIPPED_MAX", 200_000)
    art = build(project)
    assert art.size > 200_000
    assert any(r.startswith("needs S3 deployment") for r in art.details.report["recommendations"])


def test_check_unzipped_names_the_largest_from_the_manifests_json_too():
    # infra/rehearsal/run.py passes the manifest's distributions as JSON objects
    as_json = [d.to_json() for d in DISTS]
    with pytest.raises(UserError, match=r"largest: pandas 60\.0 MB, numpy 40\.0 MB"):
        check_unzipped(limits.UNZIPPED_MAX + 1, as_json)
