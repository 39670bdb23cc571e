"""The provider functions (invokes) the program may call, answered by the emulator."""

from __future__ import annotations

from typing import Any

from infra.rehearsal.engine import Aws, invoke
from infra.rehearsal.resources_s3 import bucket_outputs


@invoke("aws:s3/getBucket:getBucket")
def get_bucket(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    name = args.get("bucket")
    if not name:
        raise ValueError("getBucket needs a bucket name")
    try:
        aws.client("s3").head_bucket(Bucket=name)
    except Exception:
        raise ValueError(
            f"bucket {name} does not exist in the emulator: the stack that owns it "
            "(bucketOwner: true) must create it first"
        ) from None
    return {"id": name, **bucket_outputs(aws, name)}
