"""Benchmark: lambda_pkg against a naive `pip install -t` + `zip -r` and, when it is
installed, AWS SAM CLI (`sam build`, `sam build --cached`), in the same run.

    .venv/bin/python bench/packager.py [--runs 5] [--cold-runs 3] [--sam PATH | --install-sam]

The sample is this repository's own bot (backend/, aws/) with requirements_Version9.txt
and its committed lock. Every build is a subprocess, timed from the outside, the way a
user runs it; every figure is the median of several runs, and comparisons are ratios
measured in this run. The conditions (load average before and after, cores, Python,
the state of pip's HTTP cache and of each tool's cache) are printed above the table.
pip's HTTP cache is warmed first for every side (a download of the same wheels), so no
cold build measures the network; "cold" means an empty build cache.

SAM CLI is looked for at --sam, on PATH, then in .cache/bench-sam (--install-sam creates
that venv with `pip install aws-sam-cli`; SAM is never a dependency of the project).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conditions import conditions as shared_conditions  # noqa: E402
from bench.conditions import dir_size, pip_http_cache  # noqa: E402
from lambda_pkg.interpreters import find_interpreter  # noqa: E402
from lambda_pkg.platforms import manylinux_platforms, python_version  # noqa: E402
from lambda_pkg.sources import collect_sources  # noqa: E402
from lambda_pkg.wheelstore import STORE_ENV  # noqa: E402

PY = sys.executable
# Without a shared wheel store of the caller's: "cold" downloads every wheel.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop(STORE_ENV, None)
SAM_VENV = ROOT / ".cache" / "bench-sam"


def sh(cmd: list[str], *, env: dict[str, str] | None = None, **kw: Any) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, check=False, **kw)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_of(runs: int, fn: Callable[[int], Any]) -> tuple[float, list[float], Any]:
    """(median seconds, every sample, the last result) of fn(i) for i in range(runs)."""
    samples, result = [], None
    for i in range(runs):
        t, result = timed(lambda i=i: fn(i))
        samples.append(t)
    return statistics.median(samples), samples, result


def conditions(label: str) -> str:
    return shared_conditions(label, f"pip HTTP cache {pip_http_cache(PY)}")


# --- the sample -------------------------------------------------------------------------


def make_sample(dest: Path, requirements: Path) -> Path:
    for src in collect_sources(ROOT):
        target = dest / src.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path, target)
    shutil.copyfile(requirements, dest / "requirements_Version9.txt")
    shutil.copytree(ROOT / "locks", dest / "locks")
    return dest


def copy_touched(src: Path, dest: Path) -> Path:
    """Another checkout: another path, the modes a umask of 077 gives, every mtime
    different. (copytree copies modes, so the umask is applied by hand.)"""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".build", ".aws-sam"))
    for i, path in enumerate(sorted(dest.rglob("*"))):
        mode = path.stat().st_mode & 0o777
        os.chmod(path, 0o700 if path.is_dir() else mode & ~0o077)
        os.utime(path, (1_600_000_000 + i * 7, 1_600_000_000 + i * 7))
    return dest


def touch_code(project: Path, i: int) -> None:
    with open(project / "aws" / "market_data_fetcher.py", "a") as fh:
        fh.write(f"\n# a code-only change {i}\n")


def warm_pip_cache(requirements: Path, runtime: str, work: Path) -> None:
    """Download once for each side, so that no build measures the network."""
    sh([PY, "-m", "pip", "download", "-q", "-d", str(work / "w1"), "-r", str(requirements)])
    cmd = [PY, "-m", "pip", "download", "-q", "-d", str(work / "w2"), "--only-binary=:all:",
           "--implementation", "cp", "--python-version", python_version(runtime)]  # fmt: skip
    for tag in manylinux_platforms(runtime, "x86_64"):
        cmd += ["--platform", tag]
    sh([*cmd, "-r", str(requirements)])


# --- the three tools ----------------------------------------------------------------------


def ours(project: Path, cache: Path, *extra: str, store: Path | None = None) -> dict[str, Any]:
    """`lambda_pkg build`; with `store`, wheels come from that shared wheel store."""
    env = {**ENV, STORE_ENV: str(store)} if store else None
    out = sh([PY, "-m", "lambda_pkg", "build", "--source", str(project),
              "--cache-dir", str(cache), "--json", *extra], env=env)  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def naive(project: Path, work: Path) -> Path:
    """What most guides do: install into a directory, copy the code in, zip it all."""
    build, zip_path = work / "package", work / "naive.zip"
    shutil.rmtree(build, ignore_errors=True)
    zip_path.unlink(missing_ok=True)
    sh([PY, "-m", "pip", "install", "-q", "-t", str(build), "-r",
        str(project / "requirements_Version9.txt")])  # fmt: skip
    for top in ("aws", "backend"):
        shutil.copytree(project / top, build / top)
    sh(["zip", "-q", "-r", str(zip_path), "."], cwd=build)
    return zip_path


def find_sam(explicit: str | None, install: bool) -> str | None:
    if explicit:
        return explicit
    if found := shutil.which("sam"):
        return found
    venv_sam = SAM_VENV / "bin" / "sam"
    if not venv_sam.exists() and install:
        print("# installing aws-sam-cli into .cache/bench-sam ...", file=sys.stderr)
        sh([sys.executable, "-m", "venv", str(SAM_VENV)])
        sh([str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "aws-sam-cli"])
    return str(venv_sam) if venv_sam.exists() else None


def sam_project(project: Path, runtime: str) -> Path:
    """A SAM template for the same function; SAM reads requirements.txt in CodeUri."""
    shutil.copyfile(project / "requirements_Version9.txt", project / "requirements.txt")
    (project / "template.yaml").write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\n"
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fetcher:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: .\n"
        "      Handler: aws.market_data_fetcher.handler\n"
        f"      Runtime: {runtime}\n"
        "      Architectures: [x86_64]\n"
    )
    return project


def sam_build(sam: str, project: Path, interp_dir: str, *extra: str) -> None:
    # SAM builds with the `pythonX.Y` on PATH (no container: no Docker here).
    env = {**os.environ, "PATH": f"{interp_dir}:{os.environ.get('PATH', '')}",
           "SAM_CLI_TELEMETRY": "0"}  # fmt: skip
    env.pop("PYTHONPATH", None)
    sh([sam, "build", "--template-file", str(project / "template.yaml"), *extra],
       env=env, cwd=project)  # fmt: skip


# --- cold start ---------------------------------------------------------------------------


def import_time(python: str, directory: Path, module: str, runs: int) -> str:
    code = f"import sys; sys.path.insert(0, {str(directory)!r}); import {module}"
    cmd = [python, "-I", "-S", "-B", "-c", code]
    first = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if first.returncode != 0:
        last = (first.stderr.strip().splitlines() or ["?"])[-1]
        return f"fails ({last[:60]})"
    med, _, _ = median_of(runs, lambda _i: subprocess.run(cmd, capture_output=True, check=True))
    return f"{med:.2f} s"


def extract(zip_path: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unzipped(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def main() -> int:  # noqa: PLR0915  (one scenario, read top to bottom)
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requirements", type=Path, default=ROOT / "requirements_Version9.txt")
    ap.add_argument("--runtime", default="python3.12")
    ap.add_argument("--runs", type=int, default=5, help="warm builds and imports: median of N")
    ap.add_argument("--cold-runs", type=int, default=3, help="cold builds: median of N")
    ap.add_argument("--sam", help="the sam executable (default: PATH, then .cache/bench-sam)")
    ap.add_argument("--install-sam", action="store_true", help="create .cache/bench-sam")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive builds")
    args = ap.parse_args()
    interp = find_interpreter(python_version(args.runtime))
    target_py = interp.path if interp else None
    sam = find_sam(args.sam, args.install_sam)
    lines = [conditions("start")]
    version = interp.version if interp else "none"
    lines.append(f"# sample: {ROOT.name} sources + {args.requirements.name} and its lock; "
                 f"runtime {args.runtime}; target interpreter {version}; "
                 f"SAM CLI: {sam or 'not installed'}")  # fmt: skip
    print(lines[-1], file=sys.stderr)
    rows: list[tuple[str, ...]] = []

    with tempfile.TemporaryDirectory(prefix="bench-packager-") as tmp_name:
        tmp = Path(tmp_name)
        warm_pip_cache(args.requirements, args.runtime, tmp / "warm")
        lines.append(conditions("after warming pip's HTTP cache"))
        a = make_sample(tmp / "checkout-a" / "bot", args.requirements)
        b = copy_touched(a, tmp / "elsewhere" / "deeper" / "checkout-b")

        print("# lambda_pkg ...", file=sys.stderr)
        t_cold, cold_samples, r_cold = median_of(
            args.cold_runs, lambda i: ours(a, tmp / f"cache-cold-{i}")
        )
        cache = tmp / f"cache-cold-{args.cold_runs - 1}"
        # A copy for the import timings: the code-only rebuilds below add artifacts to this
        # cache, and its pruning may remove the cold one before then.
        cold_zip = tmp / "cold.zip"
        shutil.copyfile(r_cold["path"], cold_zip)
        t_same, _, r_same = median_of(args.runs, lambda _i: ours(a, cache))
        assert r_same["built"] is False and r_same["sha256"] == r_cold["sha256"]
        r_other = ours(b, tmp / "cache-b")  # another checkout, cold
        t_code, _, r_code = median_of(args.runs, lambda i: (touch_code(a, i), ours(a, cache))[1])
        assert r_code["built"] is True and r_code["sha256"] != r_cold["sha256"]
        r_nopyc = ours(b, tmp / "cache-c", "--no-bytecode")
        # A cold build cache whose wheels are on this machine already (another checkout's
        # or the image's build filled the shared store): the build without the download.
        store = tmp / "wheel-store"
        ours(a, tmp / "cache-fill", store=store)
        t_stored, stored_samples, _ = median_of(
            args.cold_runs, lambda i: ours(a, tmp / f"cache-stored-{i}", store=store)
        )

        n_cold = n_code = None
        naive_zip = naive_zip_b = None
        naive_same, naive_size, naive_unzipped, sam_size = False, 0, 0, 0
        if not args.no_naive:
            assert shutil.which("zip"), "the naive side needs Info-ZIP zip"
            print("# naive pip -t + zip -r ...", file=sys.stderr)
            n_cold, _, naive_zip = median_of(args.cold_runs, lambda _i: naive(a, tmp / "naive-a"))
            naive_sha = sha256(naive_zip)
            n_code, _, naive_zip_b = median_of(args.runs, lambda _i: naive(b, tmp / "naive-b"))
            naive_same = sha256(naive_zip_b) == naive_sha
            naive_size, naive_unzipped = naive_zip.stat().st_size, unzipped(naive_zip)

        s_cold = s_cached = s_code = None
        if sam and target_py:
            print("# sam build ...", file=sys.stderr)
            sam_dir = sam_project(copy_touched(a, tmp / "sam" / "bot"), args.runtime)
            interp_dir = str(Path(target_py).parent)

            def sam_cold(_i: int) -> None:
                shutil.rmtree(sam_dir / ".aws-sam", ignore_errors=True)
                sam_build(sam, sam_dir, interp_dir)

            s_cold, _, _ = median_of(args.cold_runs, sam_cold)
            sam_build(sam, sam_dir, interp_dir, "--cached")
            s_cached, _, _ = median_of(
                args.runs, lambda _i: sam_build(sam, sam_dir, interp_dir, "--cached")
            )
            s_code, _, _ = median_of(
                args.runs,
                lambda i: (touch_code(sam_dir, i), sam_build(sam, sam_dir, interp_dir, "--cached")),
            )
            sam_size = dir_size(sam_dir / ".aws-sam" / "build" / "Fetcher")

        print("# imports ...", file=sys.stderr)
        d_ours = extract(cold_zip, tmp / "x-ours")
        d_nopyc = extract(Path(r_nopyc["path"]), tmp / "x-nopyc")
        handler = "aws.market_data_fetcher"
        imp: dict[tuple[str, str], str] = {}
        for label, d in (("ours", d_ours), ("nopyc", d_nopyc)):
            for mod in (handler, "yfinance"):
                imp[label, mod] = (
                    import_time(target_py, d, mod, args.runs) if target_py else "no interpreter"
                )
        lines.append(conditions("end"))

    def ratio(x: float | None, y: float | None) -> str:
        return f"{x / y:.2f}x" if x and y else ""

    def sec(x: float | None) -> str:
        return f"{x:.2f} s" if x is not None else "n/a"

    mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
    runs = f"median of {args.runs}"
    cold = f"median of {args.cold_runs}"
    rows += [
        (f"cold build ({cold}; empty build cache, warm pip HTTP cache)", sec(t_cold),
         sec(n_cold), sec(s_cold), ratio(t_cold, n_cold), ratio(t_cold, s_cold)),
        (f"cold build, wheels in the shared wheel store ({cold}; no download)",
         sec(t_stored), "", "", "", ""),
        (f"no-change rebuild ({runs})", sec(t_same), "", f"{sec(s_cached)} (--cached)",
         "", ratio(t_same, s_cached)),
        (f"code-only change ({runs})", sec(t_code), sec(n_code), f"{sec(s_code)} (--cached)",
         ratio(t_code, n_code), ratio(t_code, s_code)),
        ("zipped size", mb(r_cold["size"]), mb(naive_size) if naive_zip else "",
         "(a directory)", "", ""),
        ("unzipped size", mb(r_cold["unzipped_size"]),
         mb(naive_unzipped) if naive_zip else "", mb(sam_size) if s_cold else "", "", ""),
        ("unzipped, no bytecode", mb(r_nopyc["unzipped_size"]), "", "", "", ""),
        ("same sha256: other path, umask, mtimes",
         "yes" if r_other["sha256"] == r_cold["sha256"] else "NO",
         ("yes" if naive_same else "no") if naive_zip else "", "", "", ""),
        (f"import handler ({args.runtime} -I -S -B, {runs})", imp["ours", handler], "", "", "",
         ""),
        (f"import yfinance ({args.runtime} -I -S -B, {runs})", imp["ours", "yfinance"], "", "",
         "", ""),
        (f"import yfinance, no bytecode ({runs})", imp["nopyc", "yfinance"], "", "", "", ""),
    ]  # fmt: skip
    print("\n".join(lines))
    print(f"# cold samples (lambda_pkg): {', '.join(f'{s:.2f}' for s in cold_samples)} s")
    print(f"# cold samples, wheels stored: {', '.join(f'{s:.2f}' for s in stored_samples)} s")
    print("| measure | lambda_pkg | naive pip -t + zip -r | sam build | ours/naive | ours/sam |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
