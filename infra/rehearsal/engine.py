"""The rehearsal engine: a Pulumi Mocks implementation that creates each resource
for real in an AWS emulator (moto_server) through boto3.

Pulumi calls `new_resource` once per resource the program declares, after that
resource's inputs (other resources' outputs) are known, and `call` for each invoke.
Every handler makes the boto3 calls `pulumi up` would cause and returns the outputs
the AWS provider would report (arn, id, version ids, ...), so the rest of the
program sees realistic values.

The handlers come from one table (infra.rehearsal.handlers); the dependency runs one
way: engine -> handlers -> resources_* -> clients. A type without a handler is an
error naming the type: a new resource must get a handler before it can be
rehearsed, it can never be skipped silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi

from infra.rehearsal.clients import EmulatorClients, Handler
from infra.rehearsal.errors import RehearsalError, ResourceFailed, UnsupportedTypeError
from infra.rehearsal.handlers import INVOKES, RESOURCES
from infra.rehearsal.shapes import redact, unwrap

T = TypeVar("T")
# How long the deploy step, leaving, waits for a handler in flight (EmulatorMocks.settle):
# well inside the 20 s the interrupted CLI allows its unwinding (__main__.UNWIND_S).
SETTLE_S = 10.0


@dataclass(frozen=True)
class Created:
    token: str
    name: str
    physical_id: str
    # What the program asked for, with secret values redacted: the rehearsal's
    # later steps read the function's S3 location and such from here.
    inputs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    outputs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class EmulatorMocks(pulumi.runtime.Mocks):
    """Pulumi mocks whose every resource is created in the emulator."""

    def __init__(self, aws: EmulatorClients) -> None:
        self.aws = aws
        self.created: list[Created] = []
        self.calls: list[str] = []
        # The first failure, kept whole: Pulumi wraps exceptions raised here in
        # several layers of "While processing ..." by the time they surface.
        self.failure: RehearsalError | None = None
        # One resource at a time: handlers share clients and read each other's
        # results, and the emulator is fast enough that parallelism buys little.
        self._lock = threading.Lock()
        # Set by settle(): the deploy step has left, and no handler starts any more.
        self._settled = False
        # Called with each resource once it exists (the rehearsal's --verbose).
        self.on_created: Callable[[Created], None] | None = None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
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
        handler = None if reading else self.handler_for(args.typ, args.name, inputs)
        kind = "read of resource" if reading else "resource"
        with self._lock:
            physical_id, outputs = self._guarded(
                (kind, args.typ, args.name), handler, args.name, unwrap(inputs)
            )
            record = Created(args.typ, args.name, physical_id, redact(inputs), outputs)
            self.created.append(record)
            if self.on_created is not None:
                self.on_created(record)
        # The provider reports inputs back as outputs too; handler outputs win.
        return physical_id, {**inputs, **outputs}

    def handler_for(self, token: str, name: str, inputs: dict[str, Any]) -> Handler | None:
        """How to make a declared resource: its create handler. (infra.rehearsal.keep
        overrides it to reuse or update what a kept local cloud already holds.)"""
        del name, inputs
        return RESOURCES.get(token)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
        fn = INVOKES.get(args.token)
        with self._lock:
            result = self._guarded(("invoke", args.token, None), fn, unwrap(dict(args.args)))
            self.calls.append(args.token)
        return result, []

    def settle(self, timeout: float = SETTLE_S) -> None:
        """Wait for the handler in flight, if any, then start no other.

        The deploy step calls this as it leaves. An interrupt (Ctrl-C) stops the program's
        event loop in the main thread, but a resource that Pulumi's thread pool is creating
        goes on; leaving under it would leave it half made, and a --keep record's entry
        pending. Bounded: a handler stuck past `timeout` is the unwind watchdog's."""
        if self._lock.acquire(timeout=timeout):
            self._settled = True
            self._lock.release()

    def _guarded(
        self, what: tuple[str, str, str | None], fn: Callable[..., T] | None, *args: Any
    ) -> T:
        """`fn(self.aws, *args)` for `what` (kind, type token, name), its failure kept
        whole as the first one; no `fn` is an unsupported type."""
        kind, token, name = what
        if self._settled:
            # Queued in Pulumi's pool before the deploy step left: never started.
            label = " ".join(part for part in (kind, token, name) if part)
            raise RehearsalError(f"{label}: the deploy step has stopped")
        try:
            if fn is None:
                raise UnsupportedTypeError(kind, token, name)
            return fn(self.aws, *args)
        except RehearsalError as exc:
            self._fail(exc)
            raise
        except Exception as exc:
            # botocore's ClientError message already names the operation and the error code.
            err = ResourceFailed(token, name or "invoke", str(exc) or type(exc).__name__)
            self._fail(err)
            raise err from exc

    def _fail(self, err: RehearsalError) -> None:
        if self.failure is None:
            self.failure = err
