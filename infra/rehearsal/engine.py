"""The rehearsal engine: a Pulumi Mocks implementation that creates each resource
for real in an AWS emulator (moto_server) through boto3.

Pulumi calls `new_resource` once per resource the program declares, after that
resource's inputs (other resources' outputs) are known, and `call` for each invoke.
Every handler makes the boto3 calls `pulumi up` would cause and returns the outputs
the AWS provider would report (arn, id, version ids, ...), so the rest of the
program sees realistic values.

A type without a handler is an error naming the type: a new resource must get a
handler before it can be rehearsed, it can never be skipped silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pulumi
from botocore.config import Config

from infra.rehearsal.errors import RehearsalError, ResourceFailed, UnsupportedTypeError
from infra.rehearsal.shapes import redact, unwrap
from localcloud.emulator import EMULATOR_ENV

Handler = Callable[["Aws", str, dict[str, Any]], tuple[str, dict[str, Any]]]
Invoke = Callable[["Aws", dict[str, Any]], dict[str, Any]]

# Filled by the @resource / @invoke decorators in the handler modules.
CREATE: dict[str, Handler] = {}
INVOKES: dict[str, Invoke] = {}


def resource(token: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        CREATE[token] = fn
        return fn

    return register


def invoke(token: str) -> Callable[[Invoke], Invoke]:
    def register(fn: Invoke) -> Invoke:
        INVOKES[token] = fn
        return fn

    return register


@dataclass(frozen=True)
class Created:
    token: str
    name: str
    physical_id: str
    # What the program asked for, with secret values redacted: the rehearsal's
    # later steps read the function's S3 location and such from here.
    inputs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    outputs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Aws:
    """boto3 clients for the emulator, plus what the handlers learn along the way.

    endpoint_url=None is only for in-process moto (`mock_aws`) in unit tests; the
    rehearsal always passes the moto_server URL, so nothing here can reach AWS.
    """

    endpoint_url: str | None
    region: str = "us-east-1"
    partition: str = "aws"
    # Bucket policies validated but not yet applied (see resources_s3.bucket_policy).
    deferred_policies: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _account_id: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        # boto3's session creation is not thread-safe, and Pulumi calls the mocks
        # from a thread pool: create each client once, under a lock.
        with self._lock:
            if service not in self._clients:
                session = boto3.session.Session(
                    # Dummy credentials, never the user's: the emulator accepts any.
                    aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
                    aws_session_token=EMULATOR_ENV["AWS_SESSION_TOKEN"],
                    region_name=self.region,
                )
                self._clients[service] = session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}),
                )
            return self._clients[service]

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self.client("sts").get_caller_identity()["Account"]
        return self._account_id

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        where = self.region if region else ""
        return f"arn:{self.partition}:{service}:{where}:{self.account_id}:{resource}"


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks whose every resource is created in the emulator."""

    def __init__(self, aws: Aws) -> None:
        # Importing the handler modules registers their handlers.
        from infra.rehearsal import invokes, resources_lambda, resources_other, resources_s3

        del invokes, resources_lambda, resources_other, resources_s3
        # Modules that expose plain RESOURCES / INVOKES dicts (no decorators).
        from infra.rehearsal import resources_ec2, resources_ecs

        for mod in (resources_ec2, resources_ecs):
            CREATE.update(mod.RESOURCES)
            INVOKES.update(mod.INVOKES)
        self.aws = aws
        self.created: list[Created] = []
        self.calls: list[str] = []
        # The first failure, kept whole: Pulumi wraps exceptions raised here in
        # several layers of "While processing ..." by the time they surface.
        self.failure: RehearsalError | None = None
        # One resource at a time: handlers share clients and read each other's
        # results, and the emulator is fast enough that parallelism buys little.
        self._lock = threading.Lock()
        # Called with each resource once it exists (the rehearsal's --verbose).
        self.on_created: Callable[[Created], None] | None = None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        # Component resources group children; they exist only in Pulumi's state.
        if args.custom is False:
            return "", inputs
        # An explicit provider (e.g. pulumi:providers:aws) has no cloud counterpart.
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider", inputs
        # `Resource.get(...)`: the program reads no existing resource (it adopts the
        # shared bucket through the getBucket invoke), so the engine has no readers.
        reading = args.custom is None and bool(args.resource_id)
        handler = None if reading else CREATE.get(args.typ)
        with self._lock:
            if handler is None:
                err: RehearsalError = UnsupportedTypeError(
                    "read of resource" if reading else "resource", args.typ, args.name
                )
                self._fail(err)
                raise err
            try:
                physical_id, outputs = handler(self.aws, args.name, unwrap(inputs))
            except RehearsalError as exc:
                self._fail(exc)
                raise
            except Exception as exc:
                err = ResourceFailed(args.typ, args.name, _reason(exc))
                self._fail(err)
                raise err from exc
            record = Created(args.typ, args.name, physical_id, redact(inputs), outputs)
            self.created.append(record)
            if self.on_created is not None:
                self.on_created(record)
        # The provider reports inputs back as outputs too; handler outputs win.
        return physical_id, {**inputs, **outputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        fn = INVOKES.get(args.token)
        with self._lock:
            if fn is None:
                err: RehearsalError = UnsupportedTypeError("invoke", args.token)
                self._fail(err)
                raise err
            try:
                result = fn(self.aws, unwrap(dict(args.args)))
            except RehearsalError as exc:
                self._fail(exc)
                raise
            except Exception as exc:
                err = ResourceFailed(args.token, "invoke", _reason(exc))
                self._fail(err)
                raise err from exc
            self.calls.append(args.token)
        return result, []

    def _fail(self, err: RehearsalError) -> None:
        if self.failure is None:
            self.failure = err


def _reason(exc: Exception) -> str:
    # botocore's ClientError message already names the operation and the error code.
    return str(exc) or type(exc).__name__
