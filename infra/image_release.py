"""Push the service's image to its ECR repository during `pulumi up`: a dynamic resource.

The push has to sit inside the deploy: after the repository exists (it is created by the
same program) and before the task definition names the image. A Pulumi dynamic resource
is exactly that step in the dependency graph:

- **create / update** push the blobs the repository lacks, then the manifest, by digest
  (`lambda_pkg.image.transfer.push`, the registry client `Image.push` uses), with ECR's
  credentials (`lambda_pkg.image.ecr.ecr_credentials`, from the environment's AWS
  credentials). No tag: the repository's tags are immutable, and a digest names the image
  without one. A code-only change uploads the code layer and the config, kilobytes.
- **diff** compares the digest (and the repository): an unchanged image is no update and
  no push, so an unchanged deploy is a no-op. Where the blobs sit (a CI artifact, the
  local cache) is not part of the image and never causes an update.
- **preview** only runs check and diff: nothing is pushed until `pulumi up`.
- **delete** removes nothing: a running task may still pull the image, and the
  repository's lifecycle rule expires old images (the repository itself is deleted with
  the stack).

Outputs: `image_uri` (`<repository url>@sha256:...`, what the task definition names),
`digest`, and what the push sent (`uploaded`, `uploaded_bytes`).

The provider is serialised into the stack's state with dill, which keeps a class from
an importable module by reference: the provider process (`python -m pulumi.dynamic`,
started by the CLI from the project directory, in the project's virtualenv) imports this
module by name. By reference rather than by value, so the state holds no bytecode tied
to one Python version. The registry client is imported only when a push runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic

from infra.artifact import ServiceImage

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
# <registry host>[:port]/<repository>: an ECR repository URL, or a test registry's.
REPOSITORY_URL_RE = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[a-z0-9][a-z0-9._/-]*", re.ASCII)
# Every push-related output; the inputs are repository_url, digest and blobs.
OUTPUTS = ("image_uri", "uploaded", "uploaded_bytes")


def push_release(repository_url: str, digest: str, blobs: str) -> dict[str, Any]:
    """Push the image whose manifest is blobs/sha256/<digest> to repository_url, by digest.
    Returns the resource's outputs. Raises lambda_pkg.errors.UserError, one line."""
    from lambda_pkg.errors import UserError
    from lambda_pkg.image.ecr import ecr_credentials, is_ecr
    from lambda_pkg.image.oci import sha256_digest
    from lambda_pkg.image.reference import BadReference, parse_reference
    from lambda_pkg.image.registry import RegistryError
    from lambda_pkg.image.transfer import push

    root = Path(blobs)

    def blob_path(blob: str) -> Path:
        algorithm, _, hexdigest = blob.partition(":")
        return root / "blobs" / algorithm / hexdigest

    try:
        manifest = blob_path(digest).read_bytes()
    except OSError as exc:
        raise UserError(
            f"image {digest}: cannot read its manifest under {root} ({exc.strerror}); "
            "build the image again (or point CTB_IMAGE_LAYOUT at the layout) and deploy"
        ) from None
    if sha256_digest(manifest) != digest:
        raise UserError(f"image {digest}: the manifest under {root} has other content")
    try:
        target = parse_reference(repository_url)
    except BadReference as exc:
        raise UserError(f"repository {repository_url}: {exc}") from None
    credentials = ecr_credentials(target.registry) if is_ecr(target.registry) else None
    try:
        result = push(manifest, blob_path, target, credentials)
    except (RegistryError, OSError) as exc:
        raise UserError(f"push of {digest} to {repository_url}: {exc}") from None
    return {
        "repository_url": repository_url,
        "digest": result.digest,
        "blobs": blobs,
        "image_uri": f"{repository_url}@{result.digest}",
        "uploaded": list(result.uploaded),
        "uploaded_bytes": result.uploaded_bytes,
    }


class ImageReleaseProvider(pulumi.dynamic.ResourceProvider):
    # Nothing secret is captured (the class is kept by name): keep the state readable.
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        failures = []
        digest, url = news.get("digest"), news.get("repository_url")
        # A value still unknown at preview (a repository not created yet) is not a string.
        if isinstance(digest, str) and not DIGEST_RE.fullmatch(digest):
            failures.append(
                pulumi.dynamic.CheckFailure("digest", f"{digest!r} is not sha256:<64 hex>")
            )
        if isinstance(url, str) and not REPOSITORY_URL_RE.fullmatch(url):
            failures.append(
                pulumi.dynamic.CheckFailure("repository_url", f"{url!r} is not host/repository")
            )
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        changed = [key for key in ("digest", "repository_url") if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(
            changes=bool(changed),
            # Another repository is another image: a new release, then the old one goes.
            replaces=["repository_url"] if "repository_url" in changed else [],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = push_release(props["repository_url"], props["digest"], props["blobs"])
        return pulumi.dynamic.CreateResult(id_=outs["image_uri"], outs=outs)

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(
            outs=push_release(news["repository_url"], news["digest"], news["blobs"])
        )

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Nothing: a task may still run the image; the lifecycle rule expires it.
        return None


@dataclass
class ImageReleaseArgs:
    repository_url: pulumi.Input[str]
    image: ServiceImage


class ImageRelease(pulumi.dynamic.Resource, module="ecr", name="ImageRelease"):
    """One image pushed to one repository; `image_uri` names it by digest."""

    image_uri: pulumi.Output[str]
    digest: pulumi.Output[str]
    uploaded: pulumi.Output[list[str]]
    uploaded_bytes: pulumi.Output[int]

    def __init__(
        self, name: str, args: ImageReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props: dict[str, Any] = {
            "repository_url": args.repository_url,
            "digest": args.image.digest,
            "blobs": str(args.image.blobs),
            # Outputs the provider fills in (None asks the engine for them).
            **dict.fromkeys(OUTPUTS),
        }
        super().__init__(ImageReleaseProvider(), name, props, opts)
