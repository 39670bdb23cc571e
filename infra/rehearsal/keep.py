"""`--keep`: deploy into the persistent local cloud and change only what changed.

How the engine learns what exists: the cloud's state dir holds, per stack, a record
`deployed-<stack>.json` of every resource this stack made there: its type and name,
a sha256 of the inputs it was made from (a file asset counted by its content), its
physical id and the outputs the engine reported. On the next `--keep`, for each
resource the program declares:

  same inputs as recorded   nothing is called; the recorded id and outputs are
                            reused, so everything downstream sees the same values
  changed inputs            updated in place (UPDATE below: the function gets its new
                            code and configuration and a new version, the alias moves,
                            put-style settings are put again); a type that cannot be
                            updated in place is a one-line error: start afresh
  not recorded              created, as the rehearsal creates it

The record belongs to one cloud (its random token): a restarted cloud is empty, so
its record is ignored and everything is created again.

Interrupted (Ctrl-C, a failure): the record is rewritten (temp file + os.replace)
after each resource the cloud has accepted, and marked pending just before, so at any
moment it names exactly what the cloud holds; a resource left pending is updated
again on the next run (every update here can be repeated).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi

from infra.rehearsal.clients import EmulatorClients, Handler, IdAndOutputs, Inputs
from infra.rehearsal.engine import EmulatorMocks
from infra.rehearsal.errors import RehearsalError
from infra.rehearsal.handlers import RESOURCES
from infra.rehearsal.resources_ecs import IMAGE_RELEASE
from infra.rehearsal.resources_lambda import function_deployed, function_request, put_alias
from infra.rehearsal.shapes import redact, unwrap
from localcloud import tasks
from localcloud.control import CloudSettings, ensure_running, export_lines, probe, stop
from localcloud.state import CloudState, write_json

RECORD_VERSION = 1

# Types whose create handler is a put: running it again with new inputs updates the
# resource in place (same name, so the same physical id).
PUT_AGAIN = frozenset(
    {
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketObjectv2:BucketObjectv2",  # a new object version, as `pulumi up` makes
        "aws:iam/rolePolicy:RolePolicy",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:lambda/layerVersion:LayerVersion",  # a new layer version, as on AWS
        "aws:secretsmanager/secretVersion:SecretVersion",
        # The strategy service's release: a new image digest, put by that digest.
        IMAGE_RELEASE,
        "aws:ecs/taskDefinition:TaskDefinition",  # a new revision, as on AWS
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:cloudwatch/logMetricFilter:LogMetricFilter",
    }
)


# Types whose every update is a new physical resource (a new version), as on AWS.
NEW_ID_ON_UPDATE = frozenset(
    {
        "aws:lambda/layerVersion:LayerVersion",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:ecs/taskDefinition:TaskDefinition",
    }
)


class KeepError(RehearsalError):
    """A change `--keep` cannot make in place; the message says how to start afresh."""


@dataclass
class Entry:
    token: str
    name: str
    digest: str
    physical_id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    # Written just before the cloud is asked to make the change: if the run stops
    # there, the cloud may or may not hold it, so the next run makes it again.
    pending: bool = False


def record_path(state_dir: Path, stack: str) -> Path:
    return state_dir / f"deployed-{stack}.json"


@dataclass
class Record:
    """What this stack deployed into one running cloud (see the module docstring)."""

    path: Path
    cloud_token: str
    entries: dict[str, Entry]

    @classmethod
    def load(cls, path: Path, cloud_token: str) -> Record:
        """The record for the cloud with `cloud_token`; empty if none, or another cloud's."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, cloud_token, {})
        except (OSError, ValueError) as exc:
            raise KeepError(f"{path}: unreadable ({exc}); remove it and run --keep again") from None
        if raw.get("cloud_token") != cloud_token or raw.get("version") != RECORD_VERSION:
            return cls(path, cloud_token, {})
        try:
            entries = {key: Entry(**value) for key, value in raw["resources"].items()}
        except (KeyError, TypeError) as exc:
            raise KeepError(f"{path}: bad entry ({exc}); remove it and run --keep again") from None
        return cls(path, cloud_token, entries)

    def save(self) -> None:
        doc = {
            "version": RECORD_VERSION,
            "cloud_token": self.cloud_token,
            "resources": {key: asdict(e) for key, e in sorted(self.entries.items())},
        }
        write_json(self.path, doc, indent=1)


def _canonical(value: Any) -> Any:
    if isinstance(value, pulumi.FileAsset):
        # By content: the package keeps its path when its code changes.
        data = Path(value.path).read_bytes()
        return {"file-asset": hashlib.sha256(data).hexdigest()}
    if isinstance(value, pulumi.StringAsset):
        return {"string-asset": value.text}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def inputs_digest(inputs: dict[str, Any]) -> str:
    """sha256 of the inputs, secrets included (unwrapped): a changed secret is a change.
    Only the hash is kept, never the value."""
    text = json.dumps(_canonical(unwrap(inputs)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- updates in place -----------------------------------------------------------------

Update = Callable[[EmulatorClients, str, dict[str, Any], Entry], tuple[str, dict[str, Any]]]

# The UpdateFunctionConfiguration fields among CreateFunction's arguments.
_CONFIG_FIELDS = (
    "Role", "Runtime", "Handler", "Description", "Timeout", "MemorySize", "Layers",
    "KMSKeyArn", "Environment", "TracingConfig", "LoggingConfig", "DeadLetterConfig",
    "EphemeralStorage",
)  # fmt: skip


def update_function(
    aws: EmulatorClients, name: str, inputs: dict[str, Any], prev: Entry
) -> tuple[str, dict[str, Any]]:
    """New configuration, new code (by its pinned S3 version), then a new version: what
    `pulumi up` does for a changed function. The front learns the new version's code
    location from these requests as they pass."""
    request = function_request(aws, name, {**inputs, "name": prev.physical_id})
    fn_name, _, _, kwargs = request
    lam = aws.client("lambda")
    lam.update_function_configuration(
        FunctionName=fn_name, **{k: kwargs[k] for k in _CONFIG_FIELDS if k in kwargs}
    )
    updated = lam.update_function_code(FunctionName=fn_name, **kwargs["Code"])
    return function_deployed(aws, inputs, request, updated, publish=kwargs["Publish"])


def update_alias(
    aws: EmulatorClients, name: str, inputs: dict[str, Any], prev: Entry
) -> tuple[str, dict[str, Any]]:
    alias_name = prev.outputs.get("name") or inputs.get("name") or name
    return put_alias(aws.client("lambda").update_alias, alias_name, inputs)


def update_permission(
    aws: EmulatorClients, name: str, inputs: dict[str, Any], prev: Entry
) -> tuple[str, dict[str, Any]]:
    """Lambda has no UpdatePermission: remove the statement, add it again by its id."""
    lam = aws.client("lambda")
    old_qualifier = prev.outputs.get("qualifier")
    # Already gone if an earlier run stopped between the two calls: add it below.
    with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
        lam.remove_permission(
            FunctionName=prev.outputs.get("function") or inputs["function"],
            StatementId=prev.physical_id,
            **({"Qualifier": old_qualifier} if old_qualifier else {}),
        )
    return RESOURCES["aws:lambda/permission:Permission"](
        aws, name, {**inputs, "statementId": prev.physical_id}
    )


def update_service(
    aws: EmulatorClients, name: str, inputs: dict[str, Any], prev: Entry
) -> tuple[str, dict[str, Any]]:
    """A new image is a new task definition revision: point the service at it, as
    `pulumi up` does (UpdateService; the service keeps its name and ARN)."""
    del name
    aws.client("ecs").update_service(
        cluster=inputs["cluster"],
        service=prev.outputs.get("name") or prev.physical_id,
        taskDefinition=inputs["taskDefinition"],
        desiredCount=int(inputs.get("desiredCount", 1)),
    )
    return prev.physical_id, {**prev.outputs, "cluster": inputs["cluster"]}


UPDATE: dict[str, Update] = {
    "aws:ecs/service:Service": update_service,
    "aws:lambda/function:Function": update_function,
    "aws:lambda/alias:Alias": update_alias,
    "aws:lambda/permission:Permission": update_permission,
}


def _refuse(message: str) -> Handler:
    # Raised from inside the engine's call, so the engine keeps it as the failure.
    def refuse(_aws: EmulatorClients, _name: str, _inputs: Inputs) -> IdAndOutputs:
        raise KeepError(message)

    return refuse


# --- the mocks ------------------------------------------------------------------------


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


class KeptMocks(EmulatorMocks):
    """The rehearsal's engine against a kept cloud: reuse, update or create (see above).

    The engine runs each returned handler under its lock, so the record is written by
    one resource at a time.
    """

    def __init__(self, aws: EmulatorClients, record: Record) -> None:
        super().__init__(aws)
        self.record = record
        self.changes = Changes()

    def handler_for(self, token: str, name: str, inputs: dict[str, Any]) -> Handler | None:
        create = RESOURCES.get(token)
        if create is None:
            return None  # the engine names the unsupported type
        key = f"{token}::{name}"
        digest = inputs_digest(inputs)
        prev = self.record.entries.get(key)
        if prev is not None and prev.digest == digest and not prev.pending:

            def reuse(_aws: EmulatorClients, _name: str, _inputs: Inputs) -> IdAndOutputs:
                self.changes.unchanged.append(key)
                return prev.physical_id, prev.outputs

            return reuse
        made = Entry(token, name, digest)
        if prev is None or not prev.physical_id:
            return self._recorded(key, made, create, self.changes.created)
        update = UPDATE.get(token)
        if update is None and token not in PUT_AGAIN:
            return _refuse(
                f"{token} {name!r} changed, and --keep cannot update it in place; start "
                "afresh: scripts/deploy.sh --local --down, then --local --keep again"
            )

        def update_it(aws: EmulatorClients, n: str, i: Inputs) -> IdAndOutputs:
            return update(aws, n, i, prev) if update else create(aws, n, i)

        return self._recorded(key, made, update_it, self.changes.updated)

    def _recorded(self, key: str, made: Entry, handler: Handler, tally: list[str]) -> Handler:
        """`handler`, recording `made` (filled in) around its call."""
        record = self.record

        def run(aws: EmulatorClients, n: str, inputs: Inputs) -> IdAndOutputs:
            before = record.entries.get(key) or made
            record.entries[key] = replace(before, digest=made.digest, pending=True)
            record.save()
            physical_id, outputs = handler(aws, n, inputs)
            if before.physical_id not in ("", physical_id) and made.token not in NEW_ID_ON_UPDATE:
                raise KeepError(
                    f"{made.token} {made.name!r} would be replaced ({before.physical_id} -> "
                    f"{physical_id}); start afresh: scripts/deploy.sh --local --down"
                )
            record.entries[key] = replace(made, physical_id=physical_id, outputs=redact(outputs))
            record.save()
            tally.append(key)
            return physical_id, outputs

        return run


# --- the cloud ------------------------------------------------------------------------


@dataclass
class Kept:
    """The local cloud a `--keep` run deployed into, and what it changed there."""

    cloud: CloudState
    region: str
    started: bool
    record: Record
    changes: Changes = field(default_factory=Changes)

    @property
    def url(self) -> str:
        return self.cloud.url

    def describe(self) -> str:
        how = "started" if self.started else "reusing the one running"
        return f"{how} at {self.url} (pid {self.cloud.pid})"

    def mocks(self, aws: EmulatorClients) -> KeptMocks:
        mocks = KeptMocks(aws, self.record)
        self.changes = mocks.changes
        return mocks

    def runs_a_task(self) -> bool:
        """Does the cloud run a long-running task (the strategy service's)?"""
        status = probe(self.cloud) or {}
        return bool(status.get("tasks"))

    def has_bucket(self, aws: EmulatorClients, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            aws.client("s3").head_bucket(Bucket=bucket)
        except ClientError:
            return False
        return True

    def left_over(self) -> list[str]:
        """Recorded resources this run's program no longer declares (left in place)."""
        seen = {*self.changes.created, *self.changes.updated, *self.changes.unchanged}
        return sorted(key for key in self.record.entries if key not in seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": self.cloud.pid,
            "state_dir": self.cloud.state_dir,
            "region": self.region,
            "started": self.started,
            "record": str(self.record.path),
            "created": self.changes.created,
            "updated": self.changes.updated,
            "unchanged": len(self.changes.unchanged),
            "writes": self.changes.writes,
            "left_over": self.left_over(),
            "export": self.export_lines(),
        }

    def export_lines(self) -> list[str]:
        # The stack's region: what it was deployed to (a reused cloud may differ).
        return export_lines(replace(self.cloud, region=self.region))


# --- the service's long-running task (localcloud.tasks) ---------------------------------

TASK_WAIT_SECONDS = tasks.STOP_SECONDS + 15  # a stop, then a start


def _wait_for_task(cloud: CloudState, name: str, digest: str | None) -> dict[str, Any] | None:
    """Wait until the cloud runs `name` with the spec `digest` (None: runs no `name`);
    the task's status entry (None when stopped)."""
    deadline = time.monotonic() + TASK_WAIT_SECONDS
    while True:
        status = probe(cloud)
        if status is None:
            raise RehearsalError(f"the local cloud at {cloud.url} stopped answering")
        task = next((t for t in status.get("tasks") or [] if t["name"] == name), None)
        if (task is None and digest is None) or (task and task["spec"] == digest):
            return task
        if time.monotonic() > deadline:
            raise RehearsalError(
                f"task {name}: the local cloud did not "
                f"{'start' if digest else 'stop'} it within {TASK_WAIT_SECONDS:g} s "
                f"(see {Path(cloud.state_dir) / 'localcloud.log'})"
            )
        time.sleep(0.2)


def run_task(kept: Kept, spec: tasks.TaskSpec) -> dict[str, Any]:
    """The cloud runs `spec` as the service's one task (a changed one replaces the running
    task); its status entry once it runs."""
    digest = tasks.submit(Path(kept.cloud.state_dir), spec)
    task = _wait_for_task(kept.cloud, spec.name, digest)
    return task or {}


def stop_task(kept: Kept, name: str) -> None:
    """The cloud runs no task `name` (returns once it has stopped)."""
    tasks.withdraw(Path(kept.cloud.state_dir), name)
    _wait_for_task(kept.cloud, name, None)


def start(state_dir: Path, stack: str, region: str) -> Kept:
    """The local cloud in `state_dir` (started if none answers there) and this stack's record."""
    cloud, started = ensure_running(CloudSettings(state_dir=state_dir.resolve(), region=region))
    record = Record.load(record_path(Path(cloud.state_dir), stack), cloud.token)
    return Kept(cloud, region, started, record)


def down(state_dir: Path) -> str:
    """Stop the local cloud in `state_dir`; the line to say about it."""
    state_dir = state_dir.resolve()
    stopped = stop(state_dir)
    for old in state_dir.glob("deployed-*.json"):
        old.unlink()  # another cloud's deployment: the next one starts empty
    if stopped.state is not None:
        return f"stopped the local cloud (pid {stopped.state.pid}); nothing is left running"
    stale = " (removed a stale state file)" if stopped.stale else ""
    return f"no local cloud is running in {state_dir}{stale}; nothing to stop"
