"""The provider functions (invokes) the program may call, answered by the emulator."""

from __future__ import annotations

from typing import Any

from infra.rehearsal.engine import Aws, invoke
from infra.rehearsal.resources_s3 import bucket_outputs


@invoke("aws:index/getCallerIdentity:getCallerIdentity")
def caller_identity(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    ident = aws.client("sts").get_caller_identity()
    return {
        "accountId": ident["Account"],
        "arn": ident["Arn"],
        "userId": ident["UserId"],
        "id": ident["Account"],
    }


@invoke("aws:index/getRegion:getRegion")
def region(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    # v7 calls it `region`; `name` is the deprecated spelling some code still reads.
    return {
        "region": aws.region,
        "name": aws.region,
        "id": aws.region,
        "endpoint": f"ec2.{aws.region}.amazonaws.com",
        "description": aws.region,
    }


@invoke("aws:index/getPartition:getPartition")
def partition(aws: Aws, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "partition": aws.partition,
        "id": aws.partition,
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


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
