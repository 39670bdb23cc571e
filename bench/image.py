"""Benchmark: `lambda_pkg image` against `podman build` of an equivalent Dockerfile,
side by side in one run, on the same local base image.

    .venv/bin/python bench/image.py [--runs 5] [--requirements FILE]

The sample is this repository's own code (backend/, aws/) and the service's
requirements. Both sides build on the project's local base (lambda_pkg.image's
`--base local`, loaded into podman's storage for the Dockerfile's FROM). The
Dockerfile COPYs the same dependency files (extracted from our dependency layer, so
podman does not resolve anything) and the code: it measures image building, not pip.
Cold builds run once each (pip's cache warm, our dependency cache empty); no-change
and code-only rebuilds are medians of --runs. Every build is a subprocess timed from
the outside. Prints the conditions and a markdown table (docs/service.md has one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conditions import conditions as shared_conditions  # noqa: E402
from lambda_pkg.image.build import APP_DIR, DEPS_DIR, ENTRYPOINT, ENV, USER  # noqa: E402
from lambda_pkg.image.inputs import SERVICE_REQUIREMENTS, collect_sources  # noqa: E402

PY = sys.executable
PYENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PODMAN = ["podman", "--runtime", "runc"]


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, env=PYENV, check=False, **kw)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_of(runs: int, fn: Any) -> tuple[float, Any]:
    samples, last = [], None
    for i in range(runs):
        t, last = timed(lambda i=i: fn(i))
        samples.append(t)
    return statistics.median(samples), last


def make_sample(dest: Path, requirements: Path) -> Path:
    for src in collect_sources(ROOT):
        target = dest / src.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path, target)
    shutil.copyfile(requirements, dest / requirements.name)
    for include in ("requirements_Version9.txt",):  # what -r lines in the service file name
        if (ROOT / include).is_file() and not (dest / include).exists():
            shutil.copyfile(ROOT / include, dest / include)
    return dest


def copy_touched(src: Path, dest: Path) -> Path:
    """Another checkout: another path, a umask of 077, every mtime different."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".build", "ctx"))
    for i, path in enumerate(sorted(dest.rglob("*"))):
        mode = path.stat().st_mode & 0o777
        os.chmod(path, 0o700 if path.is_dir() else mode & ~0o077)
        os.utime(path, (1_600_000_000 + i * 7, 1_600_000_000 + i * 7))
    return dest


def ours(project: Path, cache: Path, base: Path) -> dict[str, Any]:
    out = sh([PY, "-m", "lambda_pkg.image", "--source", str(project), "--base", str(base),
              "--cache-dir", str(cache), "--json"])  # fmt: skip
    return dict(json.loads(out.stdout))


def layout(project: Path, cache: Path, base: Path, out: Path) -> None:
    sh([PY, "-m", "lambda_pkg.image", "--source", str(project), "--base", str(base),
        "--cache-dir", str(cache), "--output", str(out)])  # fmt: skip


def bench_push(tmp: Path, runs: int) -> list[tuple[str, str, str, str]]:
    """Our registry client against skopeo (containers/image) on a local docker-registry:
    a first push (a fresh registry per sample, so neither side can mount blobs it pushed
    before), a code-only push, an unchanged push. Ours is timed in this process, as the
    Pulumi program calls it; skopeo as its command line."""
    if not (shutil.which("skopeo") and shutil.which("docker-registry")):
        return [("push (needs skopeo and docker-registry)", "not run", "", "")]
    from lambda_pkg.image.layout import read_layout
    from lambda_pkg.image.reference import parse_reference
    from lambda_pkg.image.transfer import push
    from tests.e2e.image_support import registry_server

    def ours_push(path: Path, target: str) -> None:
        image = read_layout(path, "x86_64")
        push(image.manifest_raw, image.blob, parse_reference(target))

    def skopeo_push(path: Path, target: str) -> None:
        sh(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{path}",
            f"docker://{target}"])  # fmt: skip

    print("# push: lambda_pkg's client against skopeo ...", file=sys.stderr)
    cold, code = tmp / "layout-cold", tmp / "ours-layout"
    sides = (("ours", ours_push), ("skopeo", skopeo_push))
    samples: dict[tuple[str, str], list[float]] = {}
    for i in range(runs):
        for side, fn in sides:
            with registry_server(tmp / f"registry-{side}-{i}") as host:
                target = f"{host}/ctb/strategy:1"
                samples.setdefault(("first push", side), []).append(
                    timed(lambda fn=fn, target=target: fn(cold, target))[0]
                )
                samples.setdefault(("code-only push", side), []).append(
                    timed(lambda fn=fn, target=target: fn(code, target))[0]
                )
                samples.setdefault(("unchanged push", side), []).append(
                    timed(lambda fn=fn, target=target: fn(code, target))[0]
                )
    rows = []
    for label in ("first push", "code-only push", "unchanged push"):
        o, s = (statistics.median(samples[label, side]) for side, _ in sides)
        rows.append((f"{label} (median of {runs})", f"{o:.2f} s", f"{s:.2f} s (skopeo)",
                     f"{s / o:.1f}x"))  # fmt: skip
    return rows


DOCKERFILE = """\
FROM {base}
COPY deps/ /{deps}/
COPY app/ /{app}/
ENV {env}
USER {user}
WORKDIR /{app}
ENTRYPOINT {entrypoint}
"""


def podman_context(project: Path, deps_layer: Path, ctx: Path, base_tag: str) -> Path:
    """The Dockerfile's context: the dependency files as our layer has them, the code."""
    shutil.rmtree(ctx, ignore_errors=True)
    (ctx / "app").mkdir(parents=True)
    with tarfile.open(deps_layer) as tar:
        tar.extractall(ctx / "unpacked", filter="data")
    shutil.move(ctx / "unpacked" / DEPS_DIR, ctx / "deps")
    shutil.rmtree(ctx / "unpacked")
    for src in collect_sources(project):
        target = ctx / "app" / src.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path, target)
    env = " ".join(f"{k}={v}" for k, v in sorted(ENV.items()))
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(
        base=base_tag, deps=DEPS_DIR, app=APP_DIR, env=env, user=USER,
        entrypoint=json.dumps(list(ENTRYPOINT)),
    ))  # fmt: skip
    return ctx


def podman_build(ctx: Path, tag: str, *extra: str) -> str:
    sh([*PODMAN, "build", "-q", "--pull=never", "-t", tag, *extra, str(ctx)])
    return sh(["podman", "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip()


def podman_size(ref: str) -> int:
    return int(sh(["podman", "image", "inspect", "--format", "{{.Size}}", ref]).stdout)


def write_local_base(cache: Path, out: Path) -> Path:
    """The project's local base (setup, not timed), as an OCI layout both sides use."""
    from lambda_pkg.image import oci
    from lambda_pkg.image.base import resolve_base
    from lambda_pkg.image.layout import write_layout
    from lambda_pkg.image.store import BlobStore
    from lambda_pkg.progress import Progress

    store = BlobStore(cache)
    base = resolve_base("local", runtime="python3.12", architecture="x86_64", store=store,
                        progress=Progress(False))  # fmt: skip
    size = store.path(base.digest).stat().st_size
    blobs = [base.manifest.config.digest, *(x.digest for x in base.manifest.layers)]
    write_layout(out, oci.Descriptor(oci.MANIFEST, base.digest, size), blobs, store)
    return out


def saved_size(ref: str, out: Path) -> int:
    """The image's bytes as podman writes it out (gzip layers, config, manifest)."""
    sh(["podman", "save", "-q", "--format", "oci-dir", "-o", str(out), ref])
    size = sum(p.stat().st_size for p in (out / "blobs").rglob("*") if p.is_file())
    shutil.rmtree(out)
    return size


def conditions(target: str, label: str = "# conditions") -> str:
    podman = sh(["podman", "--version"]).stdout.strip()
    return shared_conditions(
        label,
        f"target {target}",
        podman,
        "pip's HTTP cache warm, both image caches empty at the start",
    )


def bench_ours(a: Path, b: Path, tmp: Path, base_dir: Path, runs: int) -> dict[str, Any]:
    print("# lambda_pkg image: cold, no-change, code-only ...", file=sys.stderr)
    t_cold, r_cold = timed(lambda: ours(a, tmp / "cache-a", base_dir))
    t_same, r_same = median_of(runs, lambda _i: ours(a, tmp / "cache-a", base_dir))
    assert r_same["built"] is False and r_same["digest"] == r_cold["digest"]
    r_other = ours(b, tmp / "cache-b", base_dir)
    layout(a, tmp / "cache-a", base_dir, tmp / "layout-cold")

    def code_change(i: int) -> dict[str, Any]:
        with open(a / "aws" / "market_data_fetcher.py", "a") as fh:
            fh.write(f"\n# code-only change {i}\n")
        return ours(a, tmp / "cache-a", base_dir)

    t_code, r_code = median_of(runs, code_change)
    assert r_code["built"] is True and r_code["layers"][:-1] == r_cold["layers"][:-1]
    # The image cache emptied, the dependency segment (shared with the Lambda build) kept:
    # what a first image build costs on a machine that has built the Lambda zip.
    shutil.rmtree(tmp / "cache-a" / "image")
    t_warm, _ = timed(lambda: ours(a, tmp / "cache-a", base_dir))
    layout(a, tmp / "cache-a", base_dir, tmp / "ours-layout")
    return {
        "cold": t_cold, "warm": t_warm, "same": t_same, "code": t_code, "result": r_cold,
        "code_layer": r_code["layers"][-1]["size"],
        "same_digest": r_other["digest"] == r_cold["digest"],
        "deps_layer": tmp / "cache-a/image/blobs/sha256" / r_cold["layers"][-2]["digest"][7:],
    }  # fmt: skip


def bench_podman(a: Path, b: Path, tmp: Path, deps_layer: Path, base_tag: str, *, runs: int,
                 tags: list[str]) -> dict[str, Any]:  # fmt: skip
    print("# podman build: cold, no-change, code-only ...", file=sys.stderr)
    ctx_a = podman_context(a, deps_layer, tmp / "ctx-a", base_tag)
    ctx_b = podman_context(b, deps_layer, tmp / "ctx-b", base_tag)
    tags += [f"localhost/ctb-bench:{t}" for t in ("a", "b", "t0a", "t0b")]
    p_cold, id_a = timed(lambda: podman_build(ctx_a, tags[0], "--no-cache"))
    size = podman_size(tags[0])  # now: after rebuilds podman 4.3 reports more than the layers
    compressed = saved_size(tags[0], tmp / "podman-saved")
    p_same, _ = median_of(runs, lambda _i: podman_build(ctx_a, tags[0]))

    def code_change(i: int) -> str:
        with open(ctx_a / "app" / "aws" / "market_data_fetcher.py", "a") as fh:
            fh.write(f"\n# code-only change {i}\n")
        return podman_build(ctx_a, tags[0])

    p_code, _ = median_of(runs, code_change)
    id_b = podman_build(ctx_b, tags[1], "--no-cache")
    t0 = [podman_build(c, t, "--no-cache", "--timestamp", "0")
          for c, t in ((ctx_a, tags[2]), (ctx_b, tags[3]))]  # fmt: skip
    return {"cold": p_cold, "same": p_same, "code": p_code, "same_digest": id_a == id_b,
            "same_digest_t0": t0[0] == t0[1], "size": size,
            "compressed": compressed}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="rebuilds: median of N")
    ap.add_argument("--requirements", type=Path, default=None)
    args = ap.parse_args()
    assert shutil.which("podman"), "the comparison needs podman (scripts/install_test_tools.sh)"
    requirements = args.requirements or next(
        p for p in (ROOT / SERVICE_REQUIREMENTS, ROOT / "requirements_Version9.txt") if p.is_file()
    )
    tags: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp_name:
            tmp = Path(tmp_name)
            a = make_sample(tmp / "checkout-a" / "bot", requirements)
            b = copy_touched(a, tmp / "elsewhere" / "deeper" / "checkout-b")
            print("# building the local base (setup, not timed) ...", file=sys.stderr)
            base_dir = write_local_base(tmp / "base-cache", tmp / "base")
            base_id = sh(["podman", "pull", "-q", f"oci:{base_dir}"]).stdout.split()[-1]
            tags.append("localhost/ctb-bench-base:latest")
            sh(["podman", "tag", base_id, tags[0]])
            print(conditions("python3.12 (local base)"), file=sys.stderr)
            o = bench_ours(a, b, tmp, base_dir, args.runs)
            p = bench_podman(a, b, tmp, o["deps_layer"], tags[0], runs=args.runs, tags=tags)
            ours_id = sh(["podman", "pull", "-q", f"oci:{tmp / 'ours-layout'}"]).stdout.split()[-1]
            tags.append(ours_id)
            o["size"] = podman_size(ours_id)
            push_rows = bench_push(tmp, args.runs)
    finally:
        for t in reversed(tags):
            subprocess.run(["podman", "rmi", "-f", t], capture_output=True, check=False)
    report(o, p, requirements, args.runs, push_rows)
    return 0


def report(
    o: dict[str, Any],
    p: dict[str, Any],
    requirements: Path,
    runs: int,
    push_rows: list[tuple[str, str, str, str]],
) -> None:
    mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
    r = o["result"]
    compressed = sum(x["size"] for x in r["layers"])
    podman_digest = ("yes" if p["same_digest"] else "no") + (
        ", yes with --timestamp 0" if p["same_digest_t0"] else ", no even with --timestamp 0"
    )
    rows = [
        ("cold build, empty caches (1 run)", f"{o['cold']:.2f} s", f"{p['cold']:.2f} s",
         f"{p['cold'] / o['cold']:.1f}x"),
        ("cold image, dependencies cached by the Lambda build (1 run)", f"{o['warm']:.2f} s",
         f"{p['cold']:.2f} s", f"{p['cold'] / o['warm']:.1f}x"),
        (f"no-change rebuild (median of {runs})", f"{o['same']:.2f} s", f"{p['same']:.2f} s",
         f"{p['same'] / o['same']:.1f}x"),
        (f"code-only change (median of {runs})", f"{o['code']:.2f} s", f"{p['code']:.2f} s",
         f"{p['code'] / o['code']:.1f}x"),
        ("code layer, compressed", f"{o['code_layer'] / 1024:.0f} KiB", "", ""),
        ("image size (podman image inspect)", mb(o["size"]), mb(p["size"]), ""),
        ("image size, compressed layers", mb(compressed), mb(p["compressed"]), ""),
        ("same digest: other path, umask 077, mtimes", "yes" if o["same_digest"] else "NO",
         podman_digest, ""),
    ]  # fmt: skip
    deps = mb(r["layers"][-2]["size"])
    print(f"sample: {ROOT.name} sources + {requirements.name} (dependency layer {deps})")
    print("| measure | lambda_pkg image | podman build | podman / ours |")
    print("|---|---|---|---|")
    for row in rows + push_rows:
        print("| " + " | ".join(row) + " |")
    goals = [
        ("code-only <= 1 s", o["code"] <= 1.0),
        ("code-only >= 10x faster than podman build", p["code"] / o["code"] >= 10),
        ("no-change <= 0.3 s", o["same"] <= 0.3),
        ("same digest from two checkouts", o["same_digest"]),
    ]
    print("goals: " + "; ".join(f"{g}: {'met' if ok else 'MISSED'}" for g, ok in goals))
    print(conditions("python3.12 (local base)", "conditions at the end"))


if __name__ == "__main__":
    sys.exit(main())
