"""Stand-ins for S3 that make conditional writes lose, for the storage and index tests."""

import io

import boto3
from botocore.exceptions import ClientError


class RacingS3:
    """The real (moto) client, except that just before this run's first conditional
    put of `key`, another run writes `rival` there: the put then carries a stale ETag
    (or If-None-Match on an object that now exists), as in a real overlap."""

    def __init__(self, real, key, rival):
        self.real, self.key, self.rival = real, key, rival
        self.meta = real.meta
        self.puts = []

    def get_object(self, **kwargs):
        return self.real.get_object(**kwargs)

    def put_object(self, **kwargs):
        conditional = "IfMatch" in kwargs or "IfNoneMatch" in kwargs
        if conditional and kwargs["Key"] == self.key and self.rival is not None:
            self.real.put_object(Bucket=kwargs["Bucket"], Key=self.key, Body=self.rival)
            self.rival = None
        self.puts.append(kwargs)
        return self.real.put_object(**kwargs)


class AlwaysRefused:
    """A store where every conditional put loses (someone always wrote first)."""

    def __init__(self, read_error=None):
        self.read_error = read_error
        self.puts = 0
        self.meta = boto3.client("s3", region_name="us-east-1").meta

    def get_object(self, **kwargs):
        if self.read_error:
            raise ClientError({"Error": {"Code": self.read_error}}, "GetObject")
        return {"Body": io.BytesIO(b""), "ETag": '"1"'}

    def put_object(self, **kwargs):
        self.puts += 1
        raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
