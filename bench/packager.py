"""Benchmark: lambda_pkg against a naive `pip install -t` + `zip -r`, in the same run.

    .venv/bin/python bench/packager.py [--requirements FILE] [--runtime python3.12] [--runs 5]

The sample is this repository's own bot (backend/, aws/) with the Lambda requirements
(requirements_Version9.txt: yfinance and requests). Both sides start with pip's HTTP
cache warm, so neither measures the network. Every build is a subprocess, timed from
the outside, the way a user runs it. Prints a markdown table (docs/packager.md has one).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_pkg.interpreters import find_interpreter  # noqa: E402
from lambda_pkg.platforms import manylinux_platforms, python_version  # noqa: E402
from lambda_pkg.sources import collect_sources  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False, **kw)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unzipped(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def make_sample(dest: Path, requirements: Path) -> Path:
    for src in collect_sources(ROOT):
        target = dest / src.arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path, target)
    shutil.copyfile(requirements, dest / "requirements_Version9.txt")
    return dest


def copy_touched(src: Path, dest: Path) -> Path:
    """Another checkout: another path, the modes a umask of 077 gives, every mtime
    different. (copytree copies modes, so the umask is applied by hand.)"""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".build"))
    for i, path in enumerate(sorted(dest.rglob("*"))):
        mode = path.stat().st_mode & 0o777
        os.chmod(path, 0o700 if path.is_dir() else mode & ~0o077)
        os.utime(path, (1_600_000_000 + i * 7, 1_600_000_000 + i * 7))
    assert (dest / "aws" / "market_data_fetcher.py").stat().st_mode & 0o077 == 0
    return dest


# --- lambda_pkg ------------------------------------------------------------------


def ours(project: Path, cache: Path, *extra: str) -> dict:
    import json

    out = sh([PY, "-m", "lambda_pkg", "build", "--source", str(project),
              "--cache-dir", str(cache), "--json", *extra])  # fmt: skip
    return json.loads(out.stdout)


# --- the naive way -----------------------------------------------------------------


def naive(project: Path, work: Path) -> Path:
    """What most guides do: install into a directory, copy the code in, zip it all."""
    build = work / "package"
    zip_path = work / "naive.zip"
    shutil.rmtree(build, ignore_errors=True)
    zip_path.unlink(missing_ok=True)
    sh([PY, "-m", "pip", "install", "-q", "-t", str(build), "-r",
        str(project / "requirements_Version9.txt")])  # fmt: skip
    for top in ("aws", "backend"):
        if (project / top).is_dir():
            shutil.copytree(project / top, build / top)
    sh(["zip", "-q", "-r", str(zip_path), "."], cwd=build)
    return zip_path


# --- cold start ----------------------------------------------------------------------


def import_time(python: str, directory: Path, module: str, runs: int) -> str:
    code = f"import sys; sys.path.insert(0, {str(directory)!r}); import {module}"
    cmd = [python, "-I", "-S", "-B", "-c", code]
    first = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if first.returncode != 0:
        last = (first.stderr.strip().splitlines() or ["?"])[-1]
        return f"fails ({last[:60]})"
    samples = []
    for _ in range(runs):
        t, _ = timed(lambda: subprocess.run(cmd, capture_output=True, check=True))
        samples.append(t)
    return f"{statistics.median(samples):.2f} s"


def extract(zip_path: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def warm_pip_cache(requirements: Path, runtime: str, work: Path) -> None:
    """Download once for each side, so that neither build measures the network."""
    sh([PY, "-m", "pip", "download", "-q", "-d", str(work / "w1"), "-r", str(requirements)])
    cmd = [PY, "-m", "pip", "download", "-q", "-d", str(work / "w2"), "--only-binary=:all:",
           "--implementation", "cp", "--python-version", python_version(runtime)]  # fmt: skip
    for tag in manylinux_platforms(runtime, "x86_64"):
        cmd += ["--platform", tag]
    sh([*cmd, "-r", str(requirements)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requirements", type=Path, default=ROOT / "requirements_Version9.txt")
    ap.add_argument("--runtime", default="python3.12")
    ap.add_argument("--runs", type=int, default=5, help="import timings: median of N")
    args = ap.parse_args()
    assert shutil.which("zip"), "the naive side needs Info-ZIP zip"
    interp = find_interpreter(python_version(args.runtime))
    target_py = interp.path if interp else None
    host_py = sys.executable

    with tempfile.TemporaryDirectory(prefix="bench-packager-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"# sample: {ROOT.name} sources + {args.requirements.name}; runtime {args.runtime}; "
              f"target interpreter: {interp.version if interp else 'none'}; {os.cpu_count()} cores",
              file=sys.stderr)  # fmt: skip
        warm_pip_cache(args.requirements, args.runtime, tmp / "warm")
        a = make_sample(tmp / "checkout-a" / "bot", args.requirements)
        b = copy_touched(a, tmp / "elsewhere" / "deeper" / "checkout-b")

        # lambda_pkg
        print("# lambda_pkg: cold, no-change, code-only ...", file=sys.stderr)
        t_cold, r_cold = timed(lambda: ours(a, tmp / "cache-a"))
        t_same, r_same = timed(lambda: ours(a, tmp / "cache-a"))
        assert r_same["built"] is False and r_same["sha256"] == r_cold["sha256"]
        # A real rebuild in place: same checkout, an empty cache (wheels re-read,
        # bytecode recompiled, every entry recompressed).
        r_again = ours(a, tmp / "cache-a2")
        _, r_other = timed(lambda: ours(b, tmp / "cache-b"))  # another checkout, cold
        with open(a / "aws" / "market_data_fetcher.py", "a") as fh:
            fh.write("\n# a code-only change\n")
        t_code, r_code = timed(lambda: ours(a, tmp / "cache-a"))
        assert r_code["built"] is True and r_code["sha256"] != r_cold["sha256"]
        _, r_nopyc = timed(lambda: ours(b, tmp / "cache-c", "--no-bytecode"))
        ours_zip = Path(r_cold["path"])

        # naive
        print("# naive: three full builds ...", file=sys.stderr)
        n_cold, naive_zip = timed(lambda: naive(a, tmp / "naive-a"))
        naive_sha = sha256(naive_zip)
        n_same, _ = timed(lambda: naive(a, tmp / "naive-a"))
        naive_sha_again = sha256(tmp / "naive-a" / "naive.zip")
        n_code, _ = timed(lambda: naive(b, tmp / "naive-b"))
        naive_sha_b = sha256(tmp / "naive-b" / "naive.zip")
        naive_zip = tmp / "naive-a" / "naive.zip"
        naive_size, naive_unzipped = naive_zip.stat().st_size, unzipped(naive_zip)

        # cold start
        print("# imports ...", file=sys.stderr)
        d_ours = extract(ours_zip, tmp / "x-ours")
        d_nopyc = extract(Path(r_nopyc["path"]), tmp / "x-nopyc")
        d_naive = extract(naive_zip, tmp / "x-naive")
        handler = "aws.market_data_fetcher"
        imp = {}
        for label, d in (("ours", d_ours), ("nopyc", d_nopyc), ("naive", d_naive)):
            for mod in (handler, "yfinance"):
                imp[label, mod, "target"] = (
                    import_time(target_py, d, mod, args.runs) if target_py else "no interpreter"
                )
            imp[label, "yfinance", "host"] = import_time(host_py, d, "yfinance", args.runs)

    mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
    host = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    rows = [
        ("cold build", f"{t_cold:.2f} s", f"{n_cold:.2f} s", f"{t_cold / n_cold:.2f}x"),
        ("no-change rebuild", f"{t_same:.2f} s", f"{n_same:.2f} s", ""),
        ("code-only change", f"{t_code:.2f} s", f"{n_code:.2f} s", ""),
        ("zipped size", mb(r_cold["size"]), mb(naive_size), ""),
        ("unzipped size", mb(r_cold["unzipped_size"]), mb(naive_unzipped), ""),
        ("unzipped, no bytecode", mb(r_nopyc["unzipped_size"]), "", ""),
        ("same sha256: other path, umask, mtimes",
         "yes" if r_other["sha256"] == r_cold["sha256"] else "NO",
         "yes" if naive_sha == naive_sha_b else "no", ""),
        ("same sha256: rebuild in place, empty cache",
         "yes" if r_again["built"] and r_again["sha256"] == r_cold["sha256"] else "NO",
         "yes" if naive_sha == naive_sha_again else "no", ""),
        (f"import handler ({args.runtime} -I -S -B)", imp["ours", handler, "target"],
         imp["naive", handler, "target"], ""),
        (f"import yfinance ({args.runtime} -I -S -B)", imp["ours", "yfinance", "target"],
         imp["naive", "yfinance", "target"], ""),
        (f"import yfinance, no bytecode ({args.runtime})", imp["nopyc", "yfinance", "target"],
         "", ""),
        (f"import yfinance (host {host}, for reference)", imp["ours", "yfinance", "host"],
         imp["naive", "yfinance", "host"], ""),
    ]  # fmt: skip
    print("| measure | lambda_pkg | naive pip -t + zip -r | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
