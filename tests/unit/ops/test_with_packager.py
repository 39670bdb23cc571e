"""The uploader with a package from the real packager: the manifest beside the
zip supplies the metadata, so upload and Pulumi program never disagree."""

from __future__ import annotations

import boto3

from lambda_pkg.api import ensure_artifact, place_artifact
from ops.cli import main
from tests.unit.ops.helpers import BUCKET, KEY


def _project(root):
    (root / "aws").mkdir(parents=True)
    (root / "backend").mkdir()
    (root / "aws" / "__init__.py").write_text("")
    (root / "backend" / "__init__.py").write_text("")
    (root / "aws" / "market_data_fetcher.py").write_text("def handler(e, c):\n    return 1\n")
    # No requirements: a code-only build, no pip and no network.
    (root / "requirements-lambda.txt").write_text("")
    return root


def test_upload_uses_the_builders_manifest(bucket, tmp_path, capsys):
    project = _project(tmp_path / "project")
    art = ensure_artifact(project_dir=project, bytecode=False, cache_dir=tmp_path / "cache")
    placed = place_artifact(art, tmp_path / "out" / "lambda_deployment.zip")
    assert placed.manifest_path.name == "lambda_deployment.manifest.json"
    # WHEN the placed zip is uploaded without naming its manifest
    assert main(["upload", str(placed.path), bucket, KEY, "--json"]) == 0
    # THEN S3 holds exactly the builder's metadata and checksum
    head = boto3.client("s3", region_name="us-east-1").head_object(
        Bucket=BUCKET, Key=KEY, ChecksumMode="ENABLED"
    )
    assert head["Metadata"] == art.metadata()
    assert head["ChecksumSHA256"] == art.sha256_b64
    capsys.readouterr()
    # AND the cache's own manifest.json is found for the cached zip too
    assert main(["upload", str(art.path), bucket, KEY]) == 0
    assert "unchanged" in capsys.readouterr().out
