"""ensure_image: the service's image for these inputs, built only when it does not exist.

Two phases, as for the Lambda zip. *Prepare* hashes the inputs (the sources, the
requirements, the target, the base's digest, the builder's settings) in
milliseconds; *build* runs only when no image exists for that hash, and then only
the layers whose own inputs changed:

  base          the --base image's layers, as they are
  dependencies  /opt/ctb/deps: the wheels the Lambda build resolves for the same
                target (plus boto3, which a container does not get from a runtime),
                stripped the same way, with bytecode; cached by the dependency key
  code          /opt/ctb/app: backend/, aws/ and root *.py (the zip's sources) with
                bytecode; cached by the sources' fingerprint

A code-only change therefore writes one small layer, a config and a manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambda_pkg import interpreters, limits
from lambda_pkg.artifact import sha256_json
from lambda_pkg.errors import UserError
from lambda_pkg.image import checks, inputs, oci
from lambda_pkg.image.base import Base, resolve_base
from lambda_pkg.image.layout import write_layout
from lambda_pkg.image.localbase import NONROOT
from lambda_pkg.image.prune import prune, touch
from lambda_pkg.image.reference import BadReference, Reference, parse_reference
from lambda_pkg.image.store import BlobStore
from lambda_pkg.image.tarlayer import ZLIB_ID, Layer, LayerFile, write_layer
from lambda_pkg.progress import Progress

if TYPE_CHECKING:  # the registry client loads only to push (a no-change build never does)
    from lambda_pkg.image.registry import Credentials
    from lambda_pkg.image.transfer import PushResult

IMAGE_BUILDER_VERSION = "lambda_pkg-image/1"
ROOT = "opt/ctb"
APP_DIR = f"{ROOT}/app"
DEPS_DIR = f"{ROOT}/deps"
ENTRYPOINT = ("python", "-m", "backend.service")
USER = f"{NONROOT}:{NONROOT}"
ENV = {
    "PYTHONPATH": f"/{APP_DIR}:/{DEPS_DIR}",
    "PYTHONDONTWRITEBYTECODE": "1",  # the root file system is read-only on Fargate
    "PYTHONUNBUFFERED": "1",  # log lines reach awslogs as they are written
    "HOME": "/tmp",  # noqa: S108  the task's writable tmp volume; the non-root user has no home
}
# Fargate mounts the task's writable volume at /tmp. Declared as a VOLUME, the mount takes
# the image's /tmp (mode 1777) instead of a root-owned empty directory, so the non-root
# service can write its heartbeat there (infra/artifact.py checks the image declares it).
VOLUMES = ("/tmp",)  # noqa: S108  a path inside the image


@dataclass(frozen=True)
class LayerInfo:
    role: str  # "base", "dependencies" or "code"
    digest: str
    size: int
    diff_id: str = ""
    uncompressed: int = 0
    files: int = 0


@dataclass(frozen=True)
class Image:
    """A built image in the builder's store (docs/CONTRACTS.md section 11)."""

    digest: str  # the manifest's sha256:...: what a task definition names
    config_digest: str
    layers: tuple[LayerInfo, ...]
    base_digest: str
    base_source: str
    input_hash: str
    runtime: str
    architecture: str
    store: Path
    notes: tuple[str, ...] = ()
    distributions: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    @property
    def size(self) -> int:
        """Compressed bytes of every layer: what a first pull transfers."""
        return sum(layer.size for layer in self.layers)

    @property
    def manifest_path(self) -> Path:
        return BlobStore(self.store).path(self.digest)

    def blob_path(self, digest: str) -> Path:
        return BlobStore(self.store).path(digest)

    def blobs(self) -> list[str]:
        return [self.config_digest, *(layer.digest for layer in self.layers)]

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "config_digest": self.config_digest,
            "layers": [asdict(layer) for layer in self.layers],
            "base": {"source": self.base_source, "digest": self.base_digest},
            "size": self.size,
            "input_hash": self.input_hash,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "builder_version": IMAGE_BUILDER_VERSION,
            "notes": list(self.notes),
        }

    def write_layout(self, directory: Path | str, ref_name: str | None = None) -> Path:
        """Write the image as an OCI image layout (hard links from the store when possible)."""
        out = Path(directory)
        desc = oci.Descriptor(oci.MANIFEST, self.digest, self.manifest_path.stat().st_size)
        try:
            write_layout(out, desc, self.blobs(), BlobStore(self.store), ref_name)
        except OSError as exc:
            raise UserError(f"cannot write --output {out}: {exc.strerror or exc}") from None
        return out

    def push(
        self,
        target: str | Reference,
        credentials: Credentials | None = None,
        mount_from: str | None = None,
    ) -> PushResult:
        """Push to registry/repository[:tag]: blobs it lacks, then the manifest."""
        from lambda_pkg.image.ecr import ecr_credentials, is_ecr
        from lambda_pkg.image.registry import RegistryError
        from lambda_pkg.image.transfer import push

        ref = target if isinstance(target, Reference) else _target(target)
        if credentials is None and is_ecr(ref.registry):
            credentials = ecr_credentials(ref.registry)
        try:
            return push(
                self.manifest_path.read_bytes(), self.blob_path, ref, credentials, mount_from
            )
        except RegistryError as exc:
            raise UserError(f"push to {ref}: {exc}") from None


def _target(text: str) -> Reference:
    try:
        ref = parse_reference(text)
    except BadReference as exc:
        raise UserError(f"--push {exc}") from None
    if ref.digest:
        raise UserError(f"--push {text}: name a repository and optionally a tag, not a digest")
    return ref


def ensure_image(
    *,
    project_dir: Path | str = ".",
    runtime: str = limits.DEFAULT_RUNTIME,
    architecture: str = limits.DEFAULT_ARCHITECTURE,
    base: str | Path | None = None,
    cache_dir: Path | str | None = None,
    requirements: Path | str | None = None,
    pip_args: Sequence[str] = (),
    bytecode: bool = True,
    progress: bool = False,
    credentials: Credentials | None = None,
) -> Image:
    """The image for these inputs, built only if it does not exist yet.

    base: an image pinned by digest (`python:3.12-slim@sha256:...`), an OCI layout
    directory, or "local" (the project's own base); None takes the official image
    pinned for the runtime. Never prints to stdout; raises UserError for anything
    the user can fix.
    """
    image, _ = build_image(
        project_dir=project_dir, runtime=runtime, architecture=architecture, base=base,
        cache_dir=cache_dir, requirements=requirements, pip_args=pip_args, bytecode=bytecode,
        progress=Progress(progress), credentials=credentials,
    )  # fmt: skip
    return image


def build_image(
    *,
    project_dir: Path | str,
    runtime: str,
    architecture: str,
    base: str | Path | None,
    cache_dir: Path | str | None,
    requirements: Path | str | None,
    pip_args: Sequence[str],
    bytecode: bool,
    progress: Progress,
    credentials: Credentials | None = None,
) -> tuple[Image, bool]:
    """(image, built): the two-phase build behind ensure_image and the CLI."""
    inputs.check_target(runtime, architecture)
    project = Path(project_dir).absolute()
    sources = inputs.collect_sources(project)
    reqs, note = inputs.find_requirements(project, requirements)
    notes = [note] if note else []
    interp = interpreters.find_interpreter(inputs.python_version(runtime)) if bytecode else None
    if bytecode and interp is None:
        notes.append(f"no {runtime} interpreter found: building without bytecode")
    cache = Path(cache_dir).absolute() if cache_dir else project / ".build"
    store = BlobStore(cache / "image")
    resolved = resolve_base(
        str(base) if base is not None else None,
        runtime=runtime, architecture=architecture, store=store, progress=progress,
        credentials=credentials,
    )  # fmt: skip
    bytecode_id = interp.bytecode_id if interp else None
    deps_key = (
        sha256_json([IMAGE_BUILDER_VERSION, ZLIB_ID,
                     inputs.dependency_key(reqs, runtime, architecture, interp, pip_args)])
        if reqs is not None and not reqs.empty else None
    )  # fmt: skip
    code_key = sha256_json(
        [IMAGE_BUILDER_VERSION, ZLIB_ID, bytecode_id, inputs.fingerprint(sources)]
    )
    input_hash = sha256_json(
        {"builder": IMAGE_BUILDER_VERSION, "runtime": runtime, "architecture": architecture,
         "base": resolved.digest, "deps": deps_key, "code": code_key,
         "entrypoint": ENTRYPOINT, "user": USER, "env": ENV, "volumes": VOLUMES}
    )  # fmt: skip
    if (found := _existing(store, input_hash)) is not None:
        return found, False
    layers: list[LayerInfo] = []
    distributions: list[dict[str, Any]] = []
    if deps_key and reqs is not None:
        deps_layer, distributions = _deps_layer(
            store=store, key=deps_key, reqs=reqs, runtime=runtime, architecture=architecture,
            interp=interp, pip_args=pip_args, cache=cache, progress=progress,
        )  # fmt: skip
        layers.append(deps_layer)
        if not any(d.get("name") == "boto3" for d in distributions):
            notes.append(
                "boto3 is not among the image's dependencies, and unlike Lambda a container "
                f"has no runtime that provides it: list it in {inputs.SERVICE_REQUIREMENTS}"
            )
    layers.append(_code_layer(store, code_key, sources, interp, progress))
    base_size = sum(d.size for d in resolved.manifest.layers)
    notes += checks.check_size(base_size + sum(x.uncompressed for x in layers), distributions)
    image = _assemble(
        store=store, base=resolved, layers=layers, input_hash=input_hash, runtime=runtime,
        architecture=architecture, notes=notes,
    )  # fmt: skip
    image = replace(image, distributions=tuple(distributions))
    store.save_record("image", input_hash, image.to_json() | {"distributions": distributions})
    prune(store)
    progress.done()
    return image, True


def _existing(store: BlobStore, input_hash: str) -> Image | None:
    record = store.load_record("image", input_hash)
    if record is None:
        return None
    try:
        layers = tuple(LayerInfo(**layer) for layer in record["layers"])
        image = Image(
            digest=record["digest"], config_digest=record["config_digest"], layers=layers,
            base_digest=record["base"]["digest"], base_source=record["base"]["source"],
            input_hash=input_hash, runtime=record["runtime"],
            architecture=record["architecture"], store=store.root,
            notes=tuple(record["notes"]), distributions=tuple(record.get("distributions", ())),
        )  # fmt: skip
    except (KeyError, TypeError):
        return None
    sizes: list[tuple[str, int | None]] = [(image.digest, None), (image.config_digest, None)]
    sizes += [(layer.digest, layer.size) for layer in layers]
    if not all(store.has(d, s) for d, s in sizes):
        return None
    touch(store.record_path("image", input_hash))  # recently used: pruned last
    return image


def _layer_info(role: str, layer: Layer) -> LayerInfo:
    return LayerInfo(role, layer.digest, layer.size, layer.diff_id, layer.uncompressed, layer.files)


def _cached_layer(store: BlobStore, kind: str, key: str) -> LayerInfo | None:
    record = store.load_record(kind, key)
    if record is None:
        return None
    info = LayerInfo(**record["layer"])
    return info if store.has(info.digest, info.size) else None


def _deps_layer(
    *,
    store: BlobStore,
    key: str,
    reqs: inputs.Requirements,
    runtime: str,
    architecture: str,
    interp: inputs.Interpreter | None,
    pip_args: Sequence[str],
    cache: Path,
    progress: Progress,
) -> tuple[LayerInfo, list[dict[str, Any]]]:
    record = store.load_record("layer-deps", key)
    if record and (info := _cached_layer(store, "layer-deps", key)):
        return info, list(record["distributions"])
    deps = inputs.resolve_dependencies(
        reqs=reqs, runtime=runtime, architecture=architecture, interpreter=interp,
        pip_args=pip_args, cache_dir=cache, progress=progress,
    )  # fmt: skip
    # No ELF audit here: resolve_dependencies audited every library for this target.
    progress.step(f"writing the dependency layer ({len(deps.files):,} files)")
    files = [LayerFile(f"{DEPS_DIR}/{name}", data, mode) for name, mode, data in deps.files]
    info = _layer_info("dependencies", write_layer(files, store))
    store.save_record(
        "layer-deps", key,
        {"layer": asdict(info), "distributions": deps.distributions},
    )  # fmt: skip
    return info, deps.distributions


def _code_layer(
    store: BlobStore,
    key: str,
    sources: list[inputs.Source],
    interp: inputs.Interpreter | None,
    progress: Progress,
) -> LayerInfo:
    from lambda_pkg.audit import refuse_secrets
    from lambda_pkg.bytecode import compile_code, pyc_name

    if info := _cached_layer(store, "layer-code", key):
        return info
    contents = [(s.arcname, s.read()) for s in sources]
    refuse_secrets(contents, "remove it from the image (the broker keys belong in Secrets Manager)")
    files = [
        LayerFile(f"{APP_DIR}/{s.arcname}", data, s.mode)
        for s, (_, data) in zip(sources, contents, strict=True)
    ]
    if interp:
        py = [(name, data) for name, data in contents if name.endswith(".py")]
        progress.step(f"compiling {len(py)} source modules")
        # Compiled as the path the service imports them from; a .pyc depends on that
        # path, the source and the bytecode format alone, so it is cached by them.
        pycs = compile_code(interp, py, store.root / "pyc", prefix=f"/{APP_DIR}/")
        for (name, _), pyc in zip(py, pycs, strict=True):
            files.append(LayerFile(pyc_name(f"{APP_DIR}/{name}", interp.cache_tag), pyc))
    info = _layer_info("code", write_layer(files, store))
    store.save_record("layer-code", key, {"layer": asdict(info)})
    return info


def _assemble(
    *,
    store: BlobStore,
    base: Base,
    layers: list[LayerInfo],
    input_hash: str,
    runtime: str,
    architecture: str,
    notes: list[str],
) -> Image:
    history = [dict(h) for h in base.config.history]
    history += [{"created_by": f"lambda_pkg image: {layer.role} layer"} for layer in layers]
    config: dict[str, Any] = {
        "config": {
            "User": USER,
            "Env": oci.merge_env(base.config.env, ENV),
            "Entrypoint": list(ENTRYPOINT),
            "WorkingDir": f"/{APP_DIR}",
            "Volumes": {path: {} for path in VOLUMES},
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [*base.config.diff_ids, *(layer.diff_id for layer in layers)],
        },
        "history": history,
    }
    # The base's layers as they are (Docker media types were read as their OCI names).
    built = [oci.Descriptor(oci.LAYER_GZIP, x.digest, x.size) for x in layers]
    config_digest, digest = store.put_image(
        architecture, config, [*base.manifest.layers, *built], {oci.BASE_DIGEST: base.digest}
    )
    all_layers = tuple(LayerInfo("base", d.digest, d.size) for d in base.manifest.layers)
    return Image(
        digest=digest, config_digest=config_digest, layers=all_layers + tuple(layers),
        base_digest=base.digest, base_source=base.source, input_hash=input_hash,
        runtime=runtime, architecture=architecture, store=store.root, notes=tuple(notes),
    )  # fmt: skip
