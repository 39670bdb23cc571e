"""The rehearsal: deploy the whole stack to emulated AWS, then prove it works.

Steps, each timed and reported; the first failure stops the run and names itself:

  config     read Pulumi.yaml + Pulumi.<stack>.yaml, validated as the program does
  package    the build (cached) or the prebuilt CTB_ARTIFACT_MANIFEST (infra.artifact,
             as the program gets it); size budget
  emulator   moto_server on a free 127.0.0.1 port (always stopped afterwards)
  image      the strategy service's image as the program gets it: CTB_IMAGE_LAYOUT, or
             the cached build on CTB_IMAGE_BASE (default `local`, the project's own base),
             which started beside the package step (prebuild.py) and is awaited here
  deploy     the real __main__.py under the engine: every resource created via boto3
  verify     download the function's code by S3 key + pinned version; sha256 and
             CodeSha256 against the manifest; the alias points at a published version
  invoke     the handler from the unzipped package in a fresh interpreter, with the
             function's own environment: {"test": true} (must write nothing), then
             a real run with the fixture market-data provider
  inspect    what landed: objects under data/ and logs/, DynamoDB items
  task       the service as deployed: the task definition names the image by digest,
             the repository lists it, the service runs that revision; the image's own
             layers unpacked (taskrun.py)
  replay     `python -m backend.service --replay 30` from those layers, with the target
             Python and the task definition's environment: it trades the fetched bars
  trades     `python -m backend.service summary`: orders, positions, equity
  policy     the bucket policy, deferred until now (see resources_s3.bucket_policy)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.artifact import ServiceImage, get_artifact, get_image
from infra.config import NAMESPACE, StackValues, parse_values
from infra.config import StackConfig as ProgramConfig
from infra.config.stackfile import known_stacks
from infra.rehearsal import invoker, prebuild, taskrun, warmup
from infra.rehearsal.clients import EmulatorClients
from infra.rehearsal.engine import Created, EmulatorMocks
from infra.rehearsal.errors import RehearsalError
from infra.rehearsal.localbucket import create_bucket
from infra.rehearsal.program import load_stack_config, run_program
from infra.rehearsal.resources_lambda import pinned_object
from infra.rehearsal.resources_s3 import apply_deferred_policies
from lambda_pkg.artifact import Artifact
from localcloud import treecache
from localcloud.code import unpacked
from localcloud.emulator import moto_server

FUNCTION = "aws:lambda/function:Function"
LAYER = "aws:lambda/layerVersion:LayerVersion"
TABLE = "aws:dynamodb/table:Table"
ALIAS = "aws:lambda/alias:Alias"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
REPOSITORY = "aws:ecr/repository:Repository"
IMAGE_RELEASE = "pulumi-python:dynamic/ecr:ImageRelease"
# Closed bars the service replays per symbol (docs/CONTRACTS.md section 10, step 3).
REPLAY_BARS = 30
# Stands in for the market-data API key, which lives encrypted in the stack file
# (only the Pulumi CLI can decrypt it) or is not set at all. Not a credential.
PLACEHOLDER_API_KEY = "rehearsal-placeholder-not-a-key"
REAL_RUN_EVENT: dict[str, Any] = {}
TEST_EVENT = {"test": True}
# Unpacked trees kept between runs (localcloud/treecache.py), under the project like .build/.
CACHE = Path(".cache") / "rehearsal"
# Unpacked packages kept beyond the ones this run uses: a code change or two.
KEEP_PACKAGES = 2


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class PackageSummary:
    """The package as the summary reports it, against Lambda's limits."""

    sha256: str
    sha256_b64: str
    size: int
    unzipped_size: int
    layer_unzipped_size: int
    runtime: str
    architecture: str
    zipped_limit: int
    unzipped_limit: int
    zipped_pct: float
    unzipped_pct: float


@dataclass(frozen=True)
class Deployed:
    """The function as the emulator holds it after the deploy, checked by `verify`."""

    function: str
    bucket: str
    key: str
    version_id: str
    code_sha256: str
    aliases: dict[str, str]  # alias name -> function version
    runtime: str
    handler: str


@dataclass(frozen=True)
class Verified:
    """What `verify` read back for the invoke steps (config: a boto3 response)."""

    created: Created
    config: dict[str, Any]
    code: bytes
    sha256: str  # the code's, checked against the manifest and CodeSha256


@dataclass
class Result:
    stack: str
    steps: list[Step] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    resources: list[Created] = field(default_factory=list)
    invokes: list[str] = field(default_factory=list)
    package: PackageSummary | None = None
    deployed: Deployed | None = None
    invocations: list[invoker.HandlerRun] = field(default_factory=list)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    bucket_policy: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    # --keep only (infra.rehearsal.keep.Kept): the cloud left running and what changed.
    kept: Any = None
    # The stacks that own (create) the shared bucket: deployed first on a fresh account.
    owner_stacks: list[str] = field(default_factory=list)
    # The strategy service (None when the stack runs none): its image, and its ledger as
    # `python -m backend.service summary` prints it (docs/CONTRACTS.md section 10).
    image: dict[str, Any] | None = None
    strategy: dict[str, Any] | None = None
    seconds: float = 0.0
    # The failure is the user's to fix (bad stack file or config value, bad package):
    # the CLI exits 2 for it, 1 for any other failed step (docs/CONTRACTS.md §7).
    user_error: bool = False

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "ok": self.ok,
            "failed_step": self.failed_step,
            "error": self.error,
            "user_error": self.user_error,
            "seconds": round(self.seconds, 2),
            "steps": [{**asdict(s), "seconds": round(s.seconds, 2)} for s in self.steps],
            "notes": self.notes,
            "resources": [
                {"type": r.token, "name": r.name, "id": r.physical_id} for r in self.resources
            ],
            "invokes": self.invokes,
            "package": asdict(self.package) if self.package else {},
            "deployed": asdict(self.deployed) if self.deployed else {},
            "invocations": [i.to_json() for i in self.invocations],
            "objects": self.objects,
            "items": self.items,
            "bucket_policy": self.bucket_policy,
            "outputs": self.outputs,
            "kept": self.kept.to_json() if self.kept is not None else None,
            "image": self.image,
            "strategy": self.strategy,
        }


class StepFailed(Exception):
    pass


class _Runner:
    def __init__(
        self, result: Result, progress: Callable[[str], None], *, verbose: bool = False
    ) -> None:
        self.result = result
        self.progress = progress
        self.verbose = verbose

    def detail(self, line: str, output: Iterable[str] = ()) -> None:
        """A line, then a process's `output` lines, shown only with --verbose
        (DEBUG=true scripts/deploy.sh --local)."""
        if self.verbose:
            for shown in (line, *(f"  | {o}" for o in output)):
                self.progress(f"      {shown}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name, ok=False, seconds=0.0)
        start = time.perf_counter()
        self.progress(f"==> {name}")
        try:
            yield step
        except Exception as exc:
            step.seconds = time.perf_counter() - start
            self.result.steps.append(step)
            self.result.failed_step = name
            self.result.error = _describe(exc)
            self.result.user_error = name == "config" or _is_user_error(exc)
            # The reason follows once, at the end (the summary and the error line).
            self.progress(f"    FAILED ({step.seconds:.2f} s)")
            raise StepFailed(name) from exc
        step.ok = True
        step.seconds = time.perf_counter() - start
        self.result.steps.append(step)
        self.progress(f"    ok ({step.seconds:.2f} s){': ' + step.detail if step.detail else ''}")


def _is_user_error(exc: BaseException) -> bool:
    import pulumi

    from lambda_pkg.errors import UserError

    # pulumi.RunError is how a program reports bad config (infra.config.ConfigError).
    return isinstance(exc, (UserError, pulumi.RunError))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RehearsalError) or _is_user_error(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def rehearse(
    project_dir: Path,
    stack: str = "dev",
    *,
    progress: Callable[[str], None] | None = None,
    inspect: Callable[[str, Result], None] | None = None,
    overrides: dict[str, Any] | None = None,
    verbose: bool = False,
    keep: Path | None = None,
) -> Result:
    """Run every step; never raises for a failing step (see Result.failed_step).

    `overrides` are config values (short or qualified keys) laid over the stack's.
    `verbose` adds, through `progress`: each resource as it is created, each
    invocation's log lines, and the emulator's last log lines if a step fails.

    `inspect(endpoint_url, result)`, if given, is called while the emulator still
    runs, after everything has landed and before the bucket policy is applied.

    `keep` (a local cloud state dir): deploy into that persistent local cloud instead
    (started if none runs there), change only what changed, and leave it running
    (infra.rehearsal.keep; result.kept says where and what changed).
    """
    project_dir = project_dir.resolve()
    result = Result(stack=stack)
    runner = _Runner(result, progress or (lambda _msg: None), verbose=verbose)
    start = time.perf_counter()
    try:
        _rehearse(project_dir, stack, runner, inspect, overrides or {}, keep=keep)
    except StepFailed:
        pass
    finally:
        result.seconds = time.perf_counter() - start
    return result


def _rehearse(
    project_dir: Path,
    stack: str,
    runner: _Runner,
    inspect: Callable[[str, Result], None] | None,
    overrides: dict[str, Any],
    *,
    keep: Path | None = None,
) -> None:
    result = runner.result
    importing = warmup.Background(warmup.imports, project_dir)
    with tempfile.TemporaryDirectory(prefix="ctb-rehearsal-") as tmp, contextlib.ExitStack() as es:
        work = Path(tmp)
        config, adopt, cfg, artifact, image_build = _build(
            project_dir, stack, runner, overrides, es=es, work=work
        )
        region = config.get("aws:region") or "us-east-1"
        # The emulator starts while the image may still be building (prebuild.py).
        if keep is not None:
            from infra.rehearsal import keep as kept

            with runner.step("local cloud") as step:
                result.kept = kept.start(keep, stack, region)
                url, step.detail = result.kept.url, result.kept.describe()
        else:
            with runner.step("emulator") as step:
                url = _start_emulator(es, runner, work)
                step.detail = url
        aws = EmulatorClients(endpoint_url=url, region=region)
        if result.kept is None or result.kept.started:  # a running cloud's are awake
            warmup.Background(warmup.wake, aws)
        image = _image(project_dir, cfg, image_build, runner) if cfg.strategy_enabled else None
        mocks = EmulatorMocks(aws) if result.kept is None else result.kept.mocks(aws)
        mocks.on_created = lambda r: runner.detail(f"+ {r.token} {r.name!r} -> {r.physical_id}")
        if adopt and (result.kept is None or not result.kept.has_bucket(aws, adopt)):
            # Play the owner stack's part, so this one can adopt the bucket by name.
            create_bucket(aws, adopt)
        importing.join()  # before the program touches pulumi_aws (see warmup.py)
        program = _deploy(project_dir, config, artifact, mocks, runner)
        fn = _verify(aws, mocks, artifact, program, runner)
        if result.kept is not None and not result.kept.changes.writes:
            # Nothing was written: the checks of the run that deployed this still hold,
            # and an unchanged re-run should change nothing (not even data or logs)...
            wants_task = image is not None and cfg.trading_mode == "paper"
            if not wants_task or result.kept.runs_a_task():
                result.notes.append("nothing changed: the invocations were not repeated")
                return
            # ...unless the service's task is missing (an earlier run failed after
            # stopping it): its steps run again, and start it.
            result.notes.append("nothing changed, but no service task ran: its steps run again")
        _invoke_all(aws, mocks, fn, cache=project_dir / CACHE / "packages",
                    work=work, runtime=artifact.runtime, runner=runner)  # fmt: skip
        if image is not None:
            _run_service(aws, mocks, image, project_dir, work=work, runtime=cfg.runtime,
                         trading_mode=cfg.trading_mode, runner=runner)  # fmt: skip
        if inspect is not None:
            inspect(url, result)
        if result.kept is not None:
            # Validated by the deploy step, never applied to a kept cloud: moto ignores the
            # policy's TLS conditions, so its Deny would refuse every later request (the
            # functions', the AWS CLI's, the next --keep's).
            result.notes.append(
                "bucket policy validated but not applied: the local cloud cannot honour "
                "its TLS conditions (docs/local.md)"
            )
            return
        with runner.step("policy") as step:
            applied = apply_deferred_policies(aws)
            if applied:
                s3 = aws.client("s3")
                result.bucket_policy = s3.get_bucket_policy(Bucket=applied[0])["Policy"]
            step.detail = f"applied to {', '.join(applied)}" if applied else "no bucket policy"


def _build(
    project_dir: Path,
    stack: str,
    runner: _Runner,
    overrides: dict[str, Any],
    *,
    es: contextlib.ExitStack,
    work: Path,
) -> tuple[StackValues, str | None, ProgramConfig, Artifact, prebuild.Prebuild | None]:
    """The config, validated; the package; the service's image building beside it when
    the stack runs the service (stopped when `es` closes, if still running)."""
    result = runner.result
    with runner.step("config") as step:
        config = load_stack_config(project_dir, stack).with_values(overrides)
        # Validated as the program will validate it: a bad value fails here, naming
        # the key, before any build.
        config, adopt = _rehearsal_config(config, parse_values(config), result, overrides)
        cfg = parse_values(config)
        result.owner_stacks = _owner_stacks(project_dir)
        step.detail = f"{len(config.values)} keys"

    image_build = prebuild.start(cfg, project_dir, work)
    if image_build is not None:
        es.callback(image_build.stop)
    with runner.step("package") as step:
        # The program's own getter: CTB_ARTIFACT_MANIFEST, else the cached build, and
        # either must fit the stack's runtime, architecture and layer setting.
        artifact = get_artifact(cfg, project_dir=project_dir)
        result.package = _package_summary(artifact)
        step.detail = f"{artifact.sha256[:12]}… {artifact.size:,} bytes"
    return config, adopt, cfg, artifact, image_build


def _image(
    project_dir: Path, cfg: ProgramConfig, image_build: prebuild.Prebuild | None, runner: _Runner
) -> ServiceImage:
    result = runner.result
    with runner.step("image") as step, taskrun.environment(taskrun.image_env()):
        taskrun.check_target_python(cfg.runtime)
        built, seconds, failure = image_build.wait() if image_build else (False, 0.0, "")
        # The program's own getter, under the environment the program will run with:
        # the build is cached, so this call (and the program's) only hashes the inputs.
        image = get_image(cfg, project_dir=project_dir)
        if image is None:  # get_image gives one whenever strategyEnabled is true
            raise RehearsalError("strategyEnabled is true but the program got no image")
        if built is None:
            result.notes.append(
                f"the image's build beside the package failed ({failure}); the image step "
                "built it again"
            )
        result.image = {"digest": image.digest, "source": image.source}
        beside = f"; built beside the package in {seconds:.1f} s" if built else ""
        step.detail = f"{image.digest[:19]}… {image.source}{beside}"
    return image


def _start_emulator(es: contextlib.ExitStack, runner: _Runner, work: Path) -> str:
    if runner.verbose:
        # Registered first, so it runs last: once the emulator has stopped
        # (its log complete), before the temp dir goes.
        es.callback(_show_emulator_log, runner, work / "moto_server.log")
    # Stopped when the ExitStack closes: after the last step, or on any failure.
    return str(es.enter_context(moto_server(log_path=work / "moto_server.log")))


def _show_emulator_log(runner: _Runner, log: Path, lines: int = 15) -> None:
    if runner.result.ok or not log.is_file():
        return
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    runner.progress(f"    the emulator's last {len(tail)} log lines ({log.name}):")
    for line in tail:
        runner.detail(line)


def _rehearsal_config(
    config: StackValues, cfg: ProgramConfig, result: Result, overrides: dict[str, Any]
) -> tuple[StackValues, str | None]:
    """The stack's config as rehearsed, and the bucket to pre-create (adopt mode)."""
    adopt = None
    owner_key = f"{NAMESPACE}:bucketOwner"
    asked = {k if ":" in k else f"{config.project}:{k}" for k in overrides}
    if owner_key in asked and not cfg.bucket_owner:
        # Asked for explicitly: rehearse a non-owner stack adopting the shared bucket,
        # which is first created the way its owner would (infra.rehearsal.localbucket).
        adopt = cfg.bucket_name
        result.notes.append(
            f"bucketOwner false: bucket {adopt} pre-created as its owner stack would make it"
        )
    elif not cfg.bucket_owner:
        # The emulator is a fresh, empty account, like the dev-only account of docs/DESIGN.md
        # decision 1: this stack must own (create) the bucket, since no one else will.
        result.notes.append(
            "bucketOwner rehearsed as true: the emulator starts as an empty account, so this "
            "stack creates the bucket (--config bucketOwner=false rehearses adopting it)"
        )
        config = config.with_values({"bucketOwner": True})
    if cfg.market_data_api_key is None:
        result.notes.append(
            "marketDataApiKey: a placeholder stands in for the key (a real one is never read)"
        )
        config = config.with_values({"marketDataApiKey": PLACEHOLDER_API_KEY}, secret=True)
    return config, adopt


def _owner_stacks(project_dir: Path) -> list[str]:
    owners = []
    for name in known_stacks(project_dir):
        # A stack file that does not validate is no candidate (its own run says why).
        with contextlib.suppress(Exception):
            if parse_values(load_stack_config(project_dir, name)).bucket_owner:
                owners.append(name)
    return owners


def _package_summary(artifact: Artifact) -> PackageSummary:
    from lambda_pkg import limits
    from lambda_pkg.budget import check_unzipped

    layer = artifact.layer
    unzipped = artifact.unzipped_size + (layer.unzipped_size if layer else 0)
    # The packager's own check: over the limit is a UserError (exit 2) naming the
    # largest distributions, when the manifest lists them.
    dists = [d for a in (artifact, layer) if a is not None for d in a.details.distributions]
    check_unzipped(unzipped, dists)
    return PackageSummary(
        sha256=artifact.sha256,
        sha256_b64=artifact.sha256_b64,
        size=artifact.size,
        unzipped_size=artifact.unzipped_size,
        layer_unzipped_size=layer.unzipped_size if layer else 0,
        runtime=artifact.runtime,
        architecture=artifact.architecture,
        zipped_limit=limits.DIRECT_UPLOAD_ZIPPED_MAX,
        unzipped_limit=limits.UNZIPPED_MAX,
        zipped_pct=round(100 * artifact.size / limits.DIRECT_UPLOAD_ZIPPED_MAX, 1),
        unzipped_pct=round(100 * unzipped / limits.UNZIPPED_MAX, 1),
    )


def _deploy(
    project_dir: Path,
    config: StackValues,
    artifact: Artifact,
    mocks: EmulatorMocks,
    runner: _Runner,
) -> dict[str, Any]:
    result = runner.result
    with runner.step("deploy") as step:
        try:
            program = run_program(
                project_dir,
                config,
                mocks,
                env={"CTB_ARTIFACT_MANIFEST": str(artifact.manifest_path), **taskrun.image_env()},
            )
        except Exception as exc:
            # The engine keeps the first failure whole; Pulumi's wrapped copy is noisier.
            if mocks.failure is not None:
                raise mocks.failure from exc
            raise
        finally:
            mocks.settle()  # an interrupt leaves no resource half made (engine.py)
            result.resources = list(mocks.created)
            result.invokes = sorted(set(mocks.calls))
        result.outputs = {
            k: ("[secret]" if k in program.secret_outputs else v)
            for k, v in sorted(program.outputs.items())
        }
        step.detail = f"{len(mocks.created)} resources"
        if result.kept is not None:
            step.detail += f": {result.kept.changes.summary()}"
    return program.outputs


def _one(mocks: EmulatorMocks, token: str) -> Created:
    found = [r for r in mocks.created if r.token == token]
    if len(found) != 1:
        raise RehearsalError(f"expected exactly one {token}, the program declared {len(found)}")
    return found[0]


def _verify(
    aws: EmulatorClients,
    mocks: EmulatorMocks,
    artifact: Artifact,
    outputs: dict[str, Any],
    runner: _Runner,
) -> Verified:
    result = runner.result
    with runner.step("verify") as step:
        fn = _one(mocks, FUNCTION)
        bucket, key = fn.inputs["s3Bucket"], fn.inputs["s3Key"]
        version = fn.inputs.get("s3ObjectVersion") or ""
        code = pinned_object(aws, bucket, key, version)
        digest = hashlib.sha256(code).hexdigest()
        if digest != artifact.sha256:
            raise RehearsalError(
                f"s3://{bucket}/{key}?versionId={version} has sha256 {digest}, "
                f"the manifest says {artifact.sha256}"
            )
        lam = aws.client("lambda")
        conf = lam.get_function_configuration(FunctionName=fn.physical_id)
        if conf["CodeSha256"] != artifact.sha256_b64:
            raise RehearsalError(
                f"function {fn.physical_id}: CodeSha256 {conf['CodeSha256']} != the manifest's "
                f"{artifact.sha256_b64}"
            )
        aliases = lam.list_aliases(FunctionName=fn.physical_id)["Aliases"]
        alias = {a["Name"]: a["FunctionVersion"] for a in aliases}
        for name, target in alias.items():
            target_conf = lam.get_function_configuration(
                FunctionName=fn.physical_id, Qualifier=target
            )
            if target_conf["CodeSha256"] != artifact.sha256_b64:
                raise RehearsalError(f"alias {name} -> version {target} runs other code")
        result.deployed = Deployed(
            function=fn.physical_id,
            bucket=bucket,
            key=key,
            version_id=version,
            code_sha256=conf["CodeSha256"],
            aliases=alias,
            runtime=conf["Runtime"],
            handler=conf["Handler"],
        )
        # The path contract, as the stack reports it: the exports (docs/infra.md "Exports")
        # name what was deployed.
        expected = {
            "bucket_name": bucket,
            "lambda_s3_key": key,
            "package_version": version,
            "package_sha256": artifact.sha256,
            "function_name": fn.physical_id,
        }
        for name, want in expected.items():
            if name in outputs and outputs[name] != want:
                raise RehearsalError(
                    f"stack output {name} is {outputs[name]!r}, but {want!r} was deployed"
                )
        step.detail = f"CodeSha256 {conf['CodeSha256']} = manifest"
    return Verified(fn, conf, code, digest)


def _unpack(
    aws: EmulatorClients, mocks: EmulatorMocks, fn: Verified, cache: Path
) -> tuple[Path, list[Path], bool]:
    """(task dir, layer dirs, whether the package was unpacked before), from the cache:
    a warm rehearsal would otherwise unzip the same 160 MB every run."""
    task, cached = unpacked(fn.code, fn.sha256, cache)
    layers, keep = [], {fn.sha256}
    for i in (r.inputs for r in mocks.created if r.token == LAYER):
        code = pinned_object(aws, i["s3Bucket"], i["s3Key"], i.get("s3ObjectVersion"))
        keep.add(digest := hashlib.sha256(code).hexdigest())
        # Lambda extracts layers to /opt; Python finds them under /opt/python.
        layers.append(unpacked(code, digest, cache)[0] / "python")
    treecache.prune(cache, keep, extra=KEEP_PACKAGES)
    return task, layers, cached


def _invoke_all(
    aws: EmulatorClients,
    mocks: EmulatorMocks,
    fn: Verified,
    *,
    cache: Path,
    work: Path,
    runtime: str,
    runner: _Runner,
) -> None:
    result = runner.result
    conf = fn.config
    variables = dict((conf.get("Environment") or {}).get("Variables") or {})
    with runner.step("unpack") as step:
        task, layers, cached = _unpack(aws, mocks, fn, cache)
        runtime_dir = invoker.runtime_dir(work / "runtime")
        python, exact = invoker.runtime_python(runtime)
        if not exact:
            result.notes.append(
                f"no {runtime} interpreter found; the handler ran on {sys.version.split()[0]}"
            )
        step.detail = f"{'cached' if cached else 'unzipped'}; {python}"
    search_path = [*layers, runtime_dir]
    env = invoker.function_env(
        variables,
        endpoint_url=aws.endpoint_url or "",
        function_name=conf["FunctionName"],
        memory=conf.get("MemorySize", 128),
        region=aws.region,
    )
    timeout = min(int(conf.get("Timeout", 60)), 120)

    def call(event: dict[str, Any], extra: dict[str, str]) -> invoker.HandlerRun:
        inv = invoker.invoke(
            python=python,
            task_dir=task,
            runtime=os.pathsep.join(str(p) for p in search_path),
            handler=conf["Handler"],
            event=event,
            env={**env, **extra},
            timeout=timeout,
        )
        result.invocations.append(inv)
        runner.detail(f"{inv.interpreter} {conf['Handler']} {json.dumps(event)}:", inv.log_tail)
        if not inv.ok:
            raise RehearsalError(
                f"the handler failed on {json.dumps(event)}: {inv.error}\n      "
                + "\n      ".join(inv.log_tail)
            )
        verdict = judge(inv.result)
        if verdict:
            raise RehearsalError(f"the handler reported failure on {json.dumps(event)}: {verdict}")
        return inv

    data_prefix = variables.get("DATA_PREFIX", "data/")
    logs_prefix = variables.get("LOGS_PREFIX", "logs/")
    bucket = variables.get("BUCKET_NAME") or fn.created.inputs["s3Bucket"]
    table = variables.get("TABLE_NAME") or _one(mocks, TABLE).physical_id

    with runner.step("invoke test") as step:
        # Counted before and after: a kept cloud holds earlier runs' data.
        before = _landed(aws, bucket, data_prefix, logs_prefix, table)
        inv = call(TEST_EVENT, {})
        after = _landed(aws, bucket, data_prefix, logs_prefix, table)
        if written := {k: n - before[k] for k, n in after.items() if n != before[k]}:
            raise RehearsalError(f"the test event wrote something: {written}")
        step.detail = f"{inv.duration_ms:.0f} ms, wrote nothing"

    with runner.step("invoke run") as step:
        # The fixture provider: deterministic offline market data, no network.
        inv = call(REAL_RUN_EVENT, {"MARKET_DATA_PROVIDER": "fixture"})
        step.detail = f"{inv.duration_ms:.0f} ms"

    with runner.step("inspect") as step:
        s3 = aws.client("s3")
        for label, prefix in (("data", data_prefix), ("logs", logs_prefix)):
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            result.objects[label] = [{"key": o["Key"], "size": o["Size"]} for o in listed]
        scan = aws.client("dynamodb").scan(TableName=table, Limit=100)
        result.items = [_plain_item(i) for i in scan.get("Items", [])]
        missing = [k for k in ("data", "logs") if not result.objects[k]]
        if missing:
            raise RehearsalError(f"the run wrote nothing under {', '.join(missing)}/")
        if not result.items:
            raise RehearsalError(f"the run wrote no item to DynamoDB table {table}")
        step.detail = (
            f"{len(result.objects['data'])} data, {len(result.objects['logs'])} logs objects, "
            f"{len(result.items)} items"
        )


def _deployed_service(
    aws: EmulatorClients, mocks: EmulatorMocks, image: ServiceImage
) -> tuple[dict[str, Any], Created, bool]:
    """(task definition as the emulator holds it, the image release, whether the
    repository lists the image): the task definition must name the image built, by
    digest, and the service must run that revision."""
    release = _one(mocks, IMAGE_RELEASE)
    ecs = aws.client("ecs")
    task_def: dict[str, Any] = ecs.describe_task_definition(
        taskDefinition=_one(mocks, TASK_DEFINITION).physical_id
    )["taskDefinition"]
    named = task_def["containerDefinitions"][0]["image"]
    if named != release.outputs["image_uri"] or not named.endswith("@" + image.digest):
        raise RehearsalError(
            f"the task definition names {named}, not the image built ({image.digest})"
        )
    listed = aws.client("ecr").describe_images(
        repositoryName=_one(mocks, REPOSITORY).physical_id,
        imageIds=[{"imageDigest": image.digest}],
    )["imageDetails"]
    svc = _one(mocks, ECS_SERVICE)
    found = ecs.describe_services(cluster=svc.inputs["cluster"], services=[svc.physical_id])
    running = found["services"][0]["taskDefinition"] if found["services"] else None
    if running != task_def["taskDefinitionArn"]:
        raise RehearsalError(f"service {svc.physical_id} runs {running}, not the new revision")
    return task_def, release, bool(listed)


def _run_service(
    aws: EmulatorClients,
    mocks: EmulatorMocks,
    image: ServiceImage,
    project_dir: Path,
    *,
    work: Path,
    runtime: str,
    trading_mode: str,
    runner: _Runner,
) -> None:
    """The strategy service as Fargate would run it, on the bars the fetcher just
    stored (docs/CONTRACTS.md section 10, steps 3 and 4). With --keep, the service then
    keeps running in the local cloud (step "service"; localcloud.tasks)."""
    from infra.rehearsal import keep as kept_task

    result = runner.result
    described: dict[str, Any] = result.image or {}
    result.image = described
    with runner.step("task") as step:
        task_def, release, listed = _deployed_service(aws, mocks, image)
        unpacked = taskrun.unpack(image, project_dir / CACHE / "layers")
        # The image step checked the runtime's Python is here (taskrun.check_target_python).
        python, _ = invoker.runtime_python(runtime)
        described.update(
            {
                "image_uri": task_def["containerDefinitions"][0]["image"],
                "task_definition": task_def["taskDefinitionArn"],
                "in_repository": listed,
                "pushed": bool(release.outputs.get("pushed", True)),
                "layers": list(unpacked.layers),
                "python": python,
            }
        )
        if release.outputs.get("push_skipped"):
            result.notes.append(f"image {image.digest[:19]}…: {release.outputs['push_skipped']}")
        cached = sum(1 for layer in unpacked.layers if layer["cached"])
        step.detail = (
            f"revision {task_def['revision']} names it; {len(unpacked.layers)} layers "
            f"({cached} unpacked before)"
        )
    if result.kept is not None:
        # The replay writes the ledger: the kept task stops first (one writer at a time);
        # in an Alpaca mode no task runs at all.
        kept_task.stop_task(result.kept, task_def["family"])
    if trading_mode != "paper":
        # An Alpaca mode trades through Alpaca's API: the rehearsal never leaves this machine.
        result.notes.append(
            f"tradingMode {trading_mode}: the service was deployed but not run (it would trade "
            "through Alpaca's API, and the rehearsal reaches nothing outside this machine); "
            "--config tradingMode=paper rehearses its trading"
        )
        return
    task = taskrun.Task(
        unpacked,
        python=python,
        task_env=taskrun.container_environment(task_def),
        endpoint_url=aws.endpoint_url or "",
        region=aws.region,
        work=work,
    )

    def run(*args: str, timeout: float) -> taskrun.TaskRun:
        done = task.run(*args, timeout=timeout)
        runner.detail(f"{' '.join(done.command)} -> exit {done.returncode}", done.tail())
        if done.returncode != 0:
            raise RehearsalError(
                f"`{' '.join(done.command)}` exited {done.returncode}:\n      "
                + "\n      ".join(done.tail())
            )
        return done

    with runner.step("replay") as step:
        done = run("--replay", str(REPLAY_BARS), timeout=taskrun.REPLAY_TIMEOUT)
        decisions = sum(1 for line in done.stdout.splitlines() if '"decision"' in line)
        step.detail = f"{decisions} decisions in {done.seconds:.1f} s"

    with runner.step("trades") as step:
        done = run("summary", timeout=taskrun.SUMMARY_TIMEOUT)
        try:
            summary = json.loads(done.stdout)
        except ValueError:
            printed = done.stdout[:200]
            raise RehearsalError(f"`summary` printed no JSON object: {printed!r}") from None
        result.strategy = summary
        if not summary.get("orders"):
            result.notes.append(
                f"the service placed no order in {REPLAY_BARS} bars of its symbols: the "
                "strategy saw no entry (the fixture's market normally gives one)"
            )
        step.detail = (
            f"{summary.get('orders', 0)} orders, {len(summary.get('positions') or [])} "
            f"positions, equity {summary.get('equity')}"
        )
    if result.kept is not None:
        with runner.step("service") as step:
            spec = taskrun.long_running(unpacked, task_def, python=python,
                                        endpoint_url=aws.endpoint_url or "", region=aws.region,
                                        state_dir=Path(result.kept.cloud.state_dir))  # fmt: skip
            running = kept_task.run_task(result.kept, spec)
            described["task"] = running
            step.detail = (
                f"{spec.name} runs in the local cloud (pid {running['pid']}, "
                f"{spec.task_definition.rsplit('/', 1)[-1]}); logs {spec.log_group}"
            )


def judge(result: Any) -> str | None:
    """A handler that returns instead of raising can still report failure: then a
    short reason (the failed checks or symbols), else None."""
    if not isinstance(result, dict):
        return None
    status = result.get("statusCode")
    if isinstance(status, int) and status >= 400:
        return f"statusCode {status}: {_short(result.get('body', result))}"
    if (
        result.get("ok") is False
        or result.get("healthy") is False
        or str(result.get("status", "")).lower() in {"error", "failed", "unhealthy", "fail"}
    ):
        return _why(result)
    return None


_PASSING = {"ok", "pass", "passed", "skipped", "healthy"}


def _why(result: dict[str, Any]) -> str:
    """What went wrong, from the handler's own report: the failed health checks, the
    failed symbols, or its error message; the whole report only as a last resort."""
    parts = []
    for key, label in (("checks", "name"), ("results", "symbol")):
        for entry in result.get(key) or []:
            if isinstance(entry, dict) and str(entry.get("status", "")).lower() not in _PASSING:
                reason = entry.get("detail") or entry.get("error") or entry.get("reason")
                parts.append(f"{entry.get(label, '?')}: {reason or entry.get('status')}")
    if parts:
        kind = "failed checks" if result.get("checks") else "failed"
        return f"{kind}: " + "; ".join(parts)
    for key in ("message", "error", "errorMessage"):
        if result.get(key):
            return str(result[key])
    return _short(result)


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "…"


def _landed(aws: EmulatorClients, bucket: str, data: str, logs: str, table: str) -> dict[str, int]:
    s3 = aws.client("s3")
    return {
        data: s3.list_objects_v2(Bucket=bucket, Prefix=data).get("KeyCount", 0),
        logs: s3.list_objects_v2(Bucket=bucket, Prefix=logs).get("KeyCount", 0),
        table: aws.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"],
    }


def _plain_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    return {k: _jsonable(de.deserialize(v)) for k, v in item.items()}


def _jsonable(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_jsonable(v) for v in value]
    return value
