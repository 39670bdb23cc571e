"""The exported deployer policy against the program's own uploads: the CI deploy role
must be allowed to write every object a `pulumi up` of the stack puts in the bucket."""

from __future__ import annotations

import pytest

from tests.infra.harness import run_program
from tests.infra.test_policies import by_sid

OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


def allows(resources: list[str], arn: str) -> bool:
    # IAM's `*` matches any run of characters; the policy uses it only at the end.
    return any(arn == r or (r.endswith("*") and arn.startswith(r[:-1])) for r in resources)


@pytest.mark.parametrize(
    "overrides",
    [
        {"dependencyLayer": True},
        # The layer folder is fixed at lambda/<env>/layers/ (docs/CONTRACTS.md §4), so
        # a package key in a folder below lambda/<env>/ leaves the layer outside it.
        {"dependencyLayer": True, "lambdaS3Key": "lambda/dev/custom/app.zip"},
        {"dependencyLayer": True, "lambdaS3Key": "lambda/dev/sub/app.zip"},
    ],
)
def test_every_uploaded_object_is_allowed_by_package_objects(layered_artifact, overrides):
    # GIVEN a layered stack WHEN the program runs
    run = run_program("dev", layered_artifact.manifest_path, overrides=overrides)
    objects = run.of_type(OBJECT)
    assert len(objects) == 2  # the package and the layer
    # THEN the exported policy's PackageObjects covers each uploaded key
    resources = by_sid(run.outputs["deployer_policy"])["PackageObjects"]["Resource"]
    for obj in objects:
        arn = f"arn:aws:s3:::{obj.inputs['bucket']}/{obj.inputs['key']}"
        assert allows(resources, arn), (arn, resources)


def test_the_layer_folder_is_added_only_when_outside_the_package_folder(layered_artifact):
    bucket = "arn:aws:s3:::cloud-trading-bot-lambda-deployment-m6x4p8e"
    default = run_program(
        "dev", layered_artifact.manifest_path, overrides={"dependencyLayer": True}
    )
    assert by_sid(default.outputs["deployer_policy"])["PackageObjects"]["Resource"] == [
        f"{bucket}/lambda/dev/*"
    ]
    custom = run_program(
        "dev",
        layered_artifact.manifest_path,
        overrides={"dependencyLayer": True, "lambdaS3Key": "lambda/dev/custom/app.zip"},
    )
    # Exactly the two folders: nothing wider than the layer folder itself.
    assert by_sid(custom.outputs["deployer_policy"])["PackageObjects"]["Resource"] == [
        f"{bucket}/lambda/dev/custom/*",
        f"{bucket}/lambda/dev/layers/*",
    ]


def test_without_a_layer_the_layer_folder_is_not_allowed(artifact):
    key = {"lambdaS3Key": "lambda/dev/x/app.zip"}
    run = run_program("dev", artifact.manifest_path, overrides=key)
    resources = by_sid(run.outputs["deployer_policy"])["PackageObjects"]["Resource"]
    assert resources == ["arn:aws:s3:::cloud-trading-bot-lambda-deployment-m6x4p8e/lambda/dev/x/*"]
