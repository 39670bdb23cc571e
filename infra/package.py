"""The Lambda package as a versioned S3 object (and, optionally, its dependency layer).

The component takes a built artifact (path + sha256), never a source directory,
and never builds. Pulumi hashes the FileAsset itself, so unchanged bytes mean no
upload; the metadata is content-derived only for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from lambda_pkg.artifact import Artifact


@dataclass
class PackageArgs:
    bucket_name: pulumi.Input[str]
    key: str
    artifact: Artifact
    # Required when artifact.layer is set: where the layer zip goes, and its name.
    layer_key: str | None = None
    layer_name: str | None = None
    kms_key_arn: str | None = None
    # What must exist before the upload (bucket versioning, so the object gets a version).
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def _object(
    name: str, *, key: str, artifact: Artifact, args: PackageArgs, parent: pulumi.Resource
) -> aws.s3.BucketObjectv2:
    return aws.s3.BucketObjectv2(
        name,
        bucket=args.bucket_name,
        key=key,
        source=pulumi.FileAsset(str(artifact.path)),
        content_type="application/zip",
        # S3 verifies the upload against this checksum (docs/DESIGN.md decision 9).
        checksum_algorithm="SHA256",
        metadata=artifact.metadata(),
        # Unset (None) without a key: the bucket's default encryption applies.
        server_side_encryption="aws:kms" if args.kms_key_arn else None,
        kms_key_id=args.kms_key_arn,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=args.depends_on),
    )


class LayerMismatch(pulumi.RunError):
    """Lambda published other bytes than the built layer zip."""


def _checked_layer(arn: str, published: str | None, built: str) -> str:
    # None: not reported (an engine that does not fill it in); nothing to compare.
    if published is not None and published != built:
        raise LayerMismatch(
            f"layer {arn}: Lambda's CodeSha256 is {published}, but the built layer zip's is "
            f"{built}: the published layer is not the package that was built. Rebuild and "
            "deploy again (the object version it was published from is not the uploaded one)"
        )
    return arn


class LambdaPackage(pulumi.ComponentResource):
    """Outputs: `key`, `version_id`, `sha256`, `layer_arn` (None without a layer)."""

    def __init__(self, name: str, args: PackageArgs, opts: pulumi.ResourceOptions | None = None):
        artifact = args.artifact
        layer_key, layer_name = args.layer_key, args.layer_name
        # Checked before anything is registered, so a bad call leaves no half a package.
        if artifact.layer is not None and not (layer_key and layer_name):
            raise ValueError("an artifact with a layer needs layer_key and layer_name")
        super().__init__("cloud-trading-bot:lambda:LambdaPackage", name, None, opts)
        code = _object(f"{name}-object", key=args.key, artifact=artifact, args=args, parent=self)
        self.key = code.key
        self.version_id = code.version_id
        self.sha256 = pulumi.Output.from_input(artifact.sha256)
        self.layer_arn: pulumi.Output[str] | None = None

        if artifact.layer is not None and layer_key and layer_name:
            layer_zip = artifact.layer
            layer_object = _object(
                f"{name}-layer-object",
                key=layer_key,
                artifact=layer_zip,
                args=args,
                parent=self,
            )
            layer = aws.lambda_.LayerVersion(
                f"{name}-layer",
                layer_name=layer_name,
                s3_bucket=layer_object.bucket,
                s3_key=layer_object.key,
                s3_object_version=layer_object.version_id,
                source_code_hash=layer_zip.sha256_b64,
                compatible_runtimes=[layer_zip.runtime],
                compatible_architectures=[layer_zip.architecture],
                # A dependency change publishes a new version; the old one stays, because
                # the function versions published with it (the rollback targets) still
                # use it. Old versions go when the layer is deleted by hand.
                skip_destroy=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            # pulumi-aws 7 takes no code_sha256 input for a layer (it is an output only),
            # and a published layer version's code can never change. What can go wrong is
            # publishing other bytes than the built zip, so the function is given the
            # layer only once Lambda's CodeSha256 of it is the zip's.
            self.layer_arn = pulumi.Output.all(layer.arn, layer.code_sha256).apply(
                lambda found: _checked_layer(found[0], found[1], layer_zip.sha256_b64)
            )

        self.register_outputs(
            {
                "key": self.key,
                "version_id": self.version_id,
                "sha256": self.sha256,
                "layer_arn": self.layer_arn,
            }
        )
