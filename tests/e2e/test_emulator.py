import boto3
import botocore.exceptions
import pytest

from infra.emulator import moto_server

pytestmark = pytest.mark.e2e


def test_moto_server_serves_s3_and_stops_afterwards():
    # GIVEN a running emulator
    with moto_server() as url:
        s3 = boto3.client("s3", endpoint_url=url)
        # WHEN a bucket is created through real HTTP
        s3.create_bucket(Bucket="probe")
        # THEN it is listed
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]
    # AND the server is gone once the block exits
    s3 = boto3.client("s3", endpoint_url=url)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        s3.list_buckets()
