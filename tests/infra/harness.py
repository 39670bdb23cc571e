"""Harness: run the real program (`__main__.py`) under Pulumi mocks, once per stack YAML.

`run_program("dev")` loads `Pulumi.yaml` and `Pulumi.dev.yaml` for real
(infra.config.read_stack_file), sets their config the way the CLI passes it (every declared
default too; strings, with arrays and objects as JSON), points
CTB_ARTIFACT_MANIFEST at a small prebuilt package and CTB_IMAGE_LAYOUT at a tiny prebuilt
image layout (never a real build), runs the program inside a
`@pulumi.runtime.test` function that returns every export (so the engine waits for
every registration), and hands back what each resource received. Tests then
assert on that record in plain Python: no assertion lives inside an `.apply()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import os
import runpy
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from infra.config import config_string, read_stack_file
from lambda_pkg.artifact import Artifact, write_manifest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
SHIPPED_STACKS = ("dev", "prod")
PROJECT = "cloud-trading-bot"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ORG = "acme"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
# The subnets a `serviceNetwork: subnets` stack names, and the VPC AWS says they are in.
EXISTING_SUBNETS = {"subnet-0123abcd": "vpc-0fedcba9", "subnet-4567cdef": "vpc-0fedcba9"}
IMAGE_RELEASE = "pulumi-python:dynamic/ecr:ImageRelease"


# How a secret input reaches the mocks: pulumi.runtime.rpc._special_secret_sig, which
# pulumi does not export (no public API tells a wrapped secret apart), so it is spelled out.
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""
    # From the engine request itself (Mocks never see resource options).
    protect: bool = False
    retain_on_delete: bool = False
    parent_urn: str = ""
    dependencies: tuple[str, ...] = ()

    @property
    def parent_type(self) -> str | None:
        # URN type part is "parentType$childType" for a parented resource.
        qualified = self.urn.split("::")[2]
        chain = qualified.split("$")
        return chain[-2] if len(chain) > 1 else None

    def policy(self, key: str) -> dict[str, Any]:
        """A JSON policy input, parsed."""
        return json.loads(self.inputs[key])


@dataclass
class ProgramRun:
    resources: list[Recorded]
    calls: list[tuple[str, dict]]
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def named(self, name: str) -> Recorded:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource {name}, found {len(found)}"
        return found[0]

    def depends_on(self, resource: Recorded, other: Recorded) -> bool:
        return other.urn in resource.dependencies

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def under(self, component: str) -> ProgramRun:
        """The resources of the component with this logical name (`fetcher`, `strategy`)."""
        (urn,) = {
            r.urn
            for r in self.resources
            if r.name == component and r.type.startswith("cloud-trading-bot:")
        }
        return ProgramRun([r for r in self.resources if r.parent_urn == urn], [], self.outputs)

    def one(self, type_: str) -> Recorded:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


# What AWS adds to a resource's inputs, by type: the ids and ARNs the program reads back.
# Each takes the inputs and the physical name (the `name` input, else the logical one).
_ADDED: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "aws:s3/bucket:Bucket": lambda i, _: {"arn": f"arn:aws:s3:::{i['bucket']}"},
    "aws:s3/bucketObjectv2:BucketObjectv2": lambda i, _: {
        "versionId": f"version-{hashlib.sha256(i['key'].encode()).hexdigest()[:12]}"
    },
    "aws:lambda/function:Function": lambda _, n: {
        "arn": _arn("lambda", f"function:{n}"),
        "version": "1",
    },
    "aws:lambda/alias:Alias": lambda i, n: {
        "arn": _arn("lambda", f"function:{i['functionName']}:{n}")
    },
    # Lambda's CodeSha256 of the published zip: the uploaded one's, when all is well.
    "aws:lambda/layerVersion:LayerVersion": lambda i, _: {
        "arn": _arn("lambda", f"layer:{i['layerName']}:1"),
        "codeSha256": i.get("sourceCodeHash"),
    },
    "aws:iam/role:Role": lambda _, n: {"arn": f"arn:aws:iam::{ACCOUNT}:role/{n}"},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda i, _: {
        "arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{i['url'].removeprefix('https://')}"
    },
    "aws:cloudwatch/logGroup:LogGroup": lambda _, n: {"arn": _arn("logs", f"log-group:{n}")},
    "aws:dynamodb/table:Table": lambda _, n: {"arn": _arn("dynamodb", f"table/{n}")},
    "aws:secretsmanager/secret:Secret": lambda _, n: {
        "arn": _arn("secretsmanager", f"secret:{n}-AbCdEf")
    },
    "aws:cloudwatch/eventRule:EventRule": lambda _, n: {"arn": _arn("events", f"rule/{n}")},
    "aws:ecr/repository:Repository": lambda _, n: {
        "arn": _arn("ecr", f"repository/{n}"),
        "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{n}",
    },
    "aws:ecs/cluster:Cluster": lambda _, n: {"arn": _arn("ecs", f"cluster/{n}")},
    "aws:ecs/taskDefinition:TaskDefinition": lambda i, _: {
        "arn": _arn("ecs", f"task-definition/{i['family']}:1"),
        "revision": 1,
    },
    "aws:ecs/service:Service": lambda _, n: {"arn": _arn("ecs", f"service/{n}")},
    "aws:ec2/vpc:Vpc": lambda _, n: {"arn": _arn("ec2", f"vpc/{n}-id")},
    # What the provider's create returns (infra/image_release.py; pushed for real to a
    # registry in tests/infra/test_image_release.py).
    IMAGE_RELEASE: lambda i, _: {
        "image_uri": f"{i['repository_url']}@{i['digest']}",
        "uploaded": [],
        "uploaded_bytes": 0,
    },
}


def _fake_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """What AWS would report: the inputs, plus what it adds (_ADDED)."""
    name = args.inputs.get("name") or args.name
    added = _ADDED.get(args.typ)
    return {**args.inputs, **(added(dict(args.inputs), name) if added else {})}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(
        self,
        existing_buckets: set[str],
        run: ProgramRun,
        outputs: dict[str, dict[str, Any]] | None = None,
        unknown: dict[str, set[str]] | None = None,
    ):
        self.resources = run.resources
        self.pending: dict[tuple[str, str], Recorded] = {}
        self.calls = run.calls
        self.existing_buckets = existing_buckets
        # By resource type: outputs AWS reports differently from the usual (a test's case).
        self.outputs = outputs or {}
        # By resource type: outputs not reported at all, which a preview sees as unknown
        # (what the engine does for a resource it has not created yet).
        self.unknown = unknown or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        # Held until the monitor has the engine request too (RecordingMonitor): a run
        # that fails part-way must not list a resource whose registration never ended.
        self.pending[(args.typ, args.name)] = Recorded(args.typ, args.name, dict(args.inputs))
        reported = {**_fake_outputs(args), **self.outputs.get(args.typ, {})}
        for key in self.unknown.get(args.typ, ()):
            reported.pop(key, None)
        return f"{args.name}-id", reported

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:s3/getBucket:getBucket":
            bucket = args.args["bucket"]
            if bucket not in self.existing_buckets:
                # What the AWS provider answers for a bucket that does not exist.
                raise Exception(f"reading S3 Bucket ({bucket}): couldn't find resource")
            return {"id": bucket, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "id": REGION,
                "names": list(ZONES),
                "zoneIds": ["use1-az1", "use1-az2", "use1-az4"],
            }
        if args.token == "aws:ec2/getSubnet:getSubnet":
            subnet = args.args["id"]
            if subnet not in EXISTING_SUBNETS:
                raise Exception(f"no matching EC2 Subnet found ({subnet})")
            return {"id": subnet, "vpcId": EXISTING_SUBNETS[subnet]}
        raise NotImplementedError(f"the program is not expected to call {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the resource options that only the engine request carries.

    Mocks never see resource options (protect, retainOnDelete, parent, dependencies),
    and pulumi exports no public monitor to hook, so this subclasses the mocks' own
    monitor (pulumi.runtime.mocks.MockMonitor) and reads the gRPC request it gets."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request):  # the gRPC method name
        response = super().RegisterResource(request)
        recorded = self.recording.pending.pop((request.type, request.name), None)
        if recorded is not None:  # None for the root Stack: Mocks never see it
            recorded.urn = response.urn
            recorded.protect = bool(request.protect)
            recorded.retain_on_delete = bool(request.retainOnDelete)
            recorded.parent_urn = request.parent
            recorded.dependencies = tuple(request.dependencies)
            # Listed only now, whole: one append, atomic under the GIL.
            self.recording.resources.append(recorded)
        return response


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG


def stack_config(stack: str) -> dict[str, str]:
    """The stack's config as the CLI hands it to the program: Pulumi.yaml's defaults
    overlaid with Pulumi.<stack>.yaml, qualified keys, string values (read_stack_file)."""
    stack_file = read_stack_file(ROOT, stack)
    assert not stack_file.encrypted_keys, "a shipped stack file holds no encrypted value"
    return dict(stack_file.values)


def make_artifact(directory: Path, *, runtime="python3.12", architecture="x86_64", layer=False):
    """A tiny but real package + manifest, like `lambda_pkg build` writes."""
    directory.mkdir(parents=True, exist_ok=True)

    def one_zip(name: str, entry: str, text: str, manifest: Path) -> Artifact:
        path = directory / name
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(entry, text)
        data = path.read_bytes()
        return Artifact(
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            unzipped_size=len(text),
            input_hash="0" * 64,
            runtime=runtime,
            architecture=architecture,
            builder_version="test",
            manifest_path=manifest,
        )

    manifest = directory / "manifest.json"
    code = one_zip("code.zip", "aws/market_data_fetcher.py", "def handler(e, c): ...\n", manifest)
    if layer:
        deps = one_zip("layer.zip", "python/dep.py", "X = 1\n", manifest)
        code = Artifact(**{**code.__dict__, "layer": deps})
    write_manifest(code)
    return code


def _blob(directory: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = directory / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def make_image_layout(
    directory: Path,
    *,
    architecture: str = "amd64",
    tmp_volume: bool = True,
    base: bytes = b"base\n",
    code: bytes = b"X = 1\n",
) -> str:
    """A tiny but real OCI image layout, as `lambda_pkg image --output` writes one,
    standing in for the service's image: a base layer and a code layer (change `code`
    for a code-only change). Returns its manifest digest."""
    layers = [_tar_layer("etc/base-release", base), _tar_layer("opt/ctb/app/hello.py", code)]
    image_config: dict[str, Any] = {"User": "65532:65532"}
    if tmp_volume:
        image_config["Volumes"] = {"/tmp": {}}
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        }
    ).encode()
    config_digest = _blob(directory, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _blob(directory, layer),
                    "size": len(layer),
                }
                for layer, _ in layers
            ],
        }
    ).encode()
    digest = _blob(directory, manifest)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(manifest),
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    return digest


def _tar_layer(name: str, data: bytes) -> tuple[bytes, str]:
    """(gzipped layer, diff_id) holding one file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


_DEFAULT_LAYOUT: list[tuple[Path, str]] = []


def default_image_layout() -> tuple[Path, str]:
    """One tiny layout per test process (its own temp dir: safe under xdist)."""
    if not _DEFAULT_LAYOUT:
        directory = Path(tempfile.mkdtemp(prefix="ctb-image-layout-"))
        _DEFAULT_LAYOUT.append((directory, make_image_layout(directory)))
    return _DEFAULT_LAYOUT[0]


_EXPECTED_ERRORS: set[str] = set()


def _quiet_expected_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # A run that fails on purpose leaves futures holding its error; asyncio would
    # print each as "exception was never retrieved" when collected, even in a later
    # test. Only those are dropped; anything else goes to the default handler.
    if str(context.get("exception")) in _EXPECTED_ERRORS:
        return
    loop.default_exception_handler(context)


def run_under_mocks(
    build: Callable[[], dict[str, Any]],
    *,
    stack: str,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    existing_buckets: set[str] | frozenset[str] = frozenset(),
    run: ProgramRun | None = None,
    outputs: dict[str, dict[str, Any]] | None = None,
    preview: bool = False,
    unknown: dict[str, set[str]] | None = None,
) -> ProgramRun:
    """Call `build()` under fresh mocks inside `@pulumi.runtime.test`, so the engine
    waits for every registration and for the Outputs `build` returns; their resolved
    values land in `run.outputs`. `run` (made here if not given) records every
    registration that ended, even when `build` raises. `preview=True` runs it as
    `pulumi preview` does: an output the mocks do not report is unknown."""
    run = run if run is not None else ProgramRun([], [])
    mocks = RecordingMocks(set(existing_buckets), run, outputs, unknown)
    # A fresh root stack and config per run: runtime state is process-global.
    # reset_options drops the root stack; set_mocks below makes a new one.
    pulumi.runtime.reset_options(project=PROJECT, stack=stack, preview=preview, organization=ORG)
    pulumi.runtime.set_all_config(config or {}, secret_keys or [])
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT,
        stack=stack,
        preview=preview,
        monitor=RecordingMonitor(mocks),
        organization=ORG,
    )

    @pulumi.runtime.test
    def program():
        return pulumi.Output.all(**build()).apply(run.outputs.update)

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({}, [])
    return run


@contextlib.contextmanager
def _env(name: str, value: Path | str | None) -> Iterator[None]:
    previous = os.environ.pop(name, None)
    if value is not None:
        os.environ[name] = str(value)
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if previous is not None:
            os.environ[name] = previous


_DEFAULT = Path("<the tiny default layout>")


def run_program(
    stack: str,
    manifest: Path | None,
    *,
    overrides: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    secrets: dict[str, str] | None = None,
    existing_buckets: set[str] | None = None,
    raises: type[BaseException] | None = None,
    outputs: dict[str, dict[str, Any]] | None = None,
    image_layout: Path | None = _DEFAULT,
    preview: bool = False,
    unknown: dict[str, set[str]] | None = None,
) -> ProgramRun:
    """Run __main__.py for `stack` under mocks. `overrides`/`drop` use short key names
    (an override may also be qualified, `aws:region`).

    `outputs` (by resource type) replaces outputs the mocks would report, as AWS might.
    `manifest=None` leaves CTB_ARTIFACT_MANIFEST unset: the program then calls the
    packager's cached build itself (the benchmark's case). `image_layout` is what
    CTB_IMAGE_LAYOUT names (default: a tiny prebuilt layout; None leaves it unset).
    With `raises`, the run must fail with that exception (kept in `run.error`), and
    `run.resources` shows what had been registered by then."""
    config = {k: v for k, v in stack_config(stack).items() if k.split(":", 1)[1] not in drop}
    for key, value in (overrides or {}).items():
        config[key if ":" in key else f"{PROJECT}:{key}"] = config_string(value)
    secret_keys = []
    for key, value in (secrets or {}).items():
        config[f"{PROJECT}:{key}"] = config_string(value)
        secret_keys.append(f"{PROJECT}:{key}")
    buckets = existing_buckets
    if buckets is None:
        # By default the owner stack has already created the shared bucket.
        buckets = {
            str(stack_config("prod").get(f"{PROJECT}:bucketName", "")),
            "cloud-trading-bot-lambda-deployment-m6x4p8e",
        }

    def program() -> dict[str, Any]:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        assert root is not None
        return getattr(root, "outputs", None) or {}

    layout = default_image_layout()[0] if image_layout is _DEFAULT else image_layout
    run = ProgramRun([], [])
    try:
        with _env("CTB_ARTIFACT_MANIFEST", manifest), _env("CTB_IMAGE_LAYOUT", layout):
            run_under_mocks(
                program, stack=stack, config=config, secret_keys=secret_keys,
                existing_buckets=buckets, run=run, outputs=outputs, preview=preview,
                unknown=unknown,
            )  # fmt: skip
    except Exception as exc:
        if raises is None or not isinstance(exc, raises):
            raise
        # Keep the message, not the frames: they hold the failed futures alive.
        run.error = exc.with_traceback(None)
    if raises is not None and run.error is None:
        raise AssertionError(f"the program did not raise {raises.__name__}")
    if run.error is not None:
        _EXPECTED_ERRORS.add(str(run.error))
        asyncio.get_event_loop().set_exception_handler(_quiet_expected_errors)
    return run
