"""The workflows' package steps: build once, describe the package, tell the pull request.

    python .github/scripts/ci_artifact.py prepare --out dist [--runtime R]
                                          [--architecture A] [--layer]
    python .github/scripts/ci_artifact.py summary --manifest dist/manifest.json
    python .github/scripts/ci_artifact.py comment --manifest dist/manifest.json --pr N
    python .github/scripts/ci_artifact.py image --report dist/image.json

`prepare` builds through the packager's contract (lambda_pkg.api.ensure_artifact, a
cache hit when nothing changed), copies the zip(s) and the manifest into one folder that
the workflow uploads as an artifact, and re-reads the copy with load_manifest, which
checks every zip against its sha256. Every later job deploys exactly those bytes through
CTB_ARTIFACT_MANIFEST (docs/CONTRACTS.md section 2): build once, deploy many.

`image` reads the report `python -m lambda_pkg image --output dist/image --json` wrote,
checks it names the layout it built, sets the step output `digest` (what both stacks'
task definitions will name) and prints the image's layers for the job summary.

`comment` keeps ONE comment per pull request up to date (found by a hidden marker), so
pushes to a pull request edit the comment instead of piling up new ones.

Standard library only: it runs before any dependency is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lambda_pkg import limits  # noqa: E402  (needs the repository root on sys.path)
from lambda_pkg.artifact import Artifact, load_manifest  # noqa: E402
from lambda_pkg.errors import UserError  # noqa: E402

MARKER = "<!-- cloud-trading-bot:package-report -->"
MANIFEST_NAME = "manifest.json"
_REPO_RE = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_MAX_PAGES = 20


def prepare(
    out: Path,
    *,
    runtime: str = limits.DEFAULT_RUNTIME,
    architecture: str = limits.DEFAULT_ARCHITECTURE,
    layer: bool = False,
    project_dir: Path = ROOT,
    build: Callable[..., Artifact] | None = None,
) -> Artifact:
    """Build (or reuse) the package and gather it, verified, under `out`."""
    if build is None:
        from lambda_pkg.api import ensure_artifact as build
    art = build(project_dir=project_dir, runtime=runtime, architecture=architecture, layer=layer)
    out.mkdir(parents=True, exist_ok=True)
    for zipped in (art, art.layer):
        if zipped is not None:
            shutil.copyfile(zipped.path, out / zipped.path.name)
    shutil.copyfile(art.manifest_path, out / MANIFEST_NAME)
    # Re-read the copy: fails if a zip is missing or its bytes differ from the manifest.
    return load_manifest(out / MANIFEST_NAME)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.2f} MiB"


def _share(n: int, limit: int) -> str:
    pct = 100 * n / limit
    if n > limit:
        return f"{pct:.1f}% :x:"
    return f"{pct:.1f}%{' :warning:' if n >= limits.WARN_FRACTION * limit else ''}"


def render(art: Artifact) -> str:
    """The pull-request comment / job summary: what would be deployed, and its budget."""
    unzipped_total = art.unzipped_size + (art.layer.unzipped_size if art.layer else 0)
    zipped = (
        f"{art.size:,} bytes ({_mib(art.size)}), "
        f"{100 * art.size / limits.DIRECT_UPLOAD_ZIPPED_MAX:.1f}% of the 50 MiB direct-upload limit"
    )
    if art.size > limits.DIRECT_UPLOAD_ZIPPED_MAX:
        # The program deploys from S3, where only the unzipped limit applies.
        zipped += " (fine: deployed through S3)"
    rows = [
        ("sha256", f"`{art.sha256}`"),
        ("CodeSha256 (what Lambda reports)", f"`{art.sha256_b64}`"),
        ("zipped", zipped),
        (
            "unzipped, function + layers",
            f"{unzipped_total:,} bytes ({_mib(unzipped_total)}), "
            f"{_share(unzipped_total, limits.UNZIPPED_MAX)} of the 262,144,000-byte limit",
        ),
        ("runtime / architecture", f"{art.runtime} / {art.architecture}"),
    ]
    if art.layer is not None:
        rows.append(("dependency layer", f"`{art.layer.sha256}`, {art.layer.size:,} bytes zipped"))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (
        f"{MARKER}\n"
        "### Lambda package\n\n"
        "| | |\n|---|---|\n"
        f"{table}\n\n"
        "Built once by this run: every stack it previews or deploys gets exactly these bytes.\n"
    )


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_report(path: Path) -> dict[str, Any]:
    """The image build's --json report, checked: a digest, and the layout it wrote."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--report {path}: cannot read the image report ({exc}); write it with "
            "python -m lambda_pkg image --output dist/image --json > dist/image.json"
        ) from None
    digest = report.get("digest") if isinstance(report, dict) else None
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise UserError(f"--report {path}: no image digest in it (expected sha256:<64 hex>)")
    layout = report.get("output")
    index = Path(str(layout)) / "index.json" if layout else None
    if index is None or not index.is_file() or digest not in index.read_text(encoding="utf-8"):
        raise UserError(
            f"--report {path}: the layout it names ({layout}) does not hold image {digest}; "
            "build with --output"
        )
    return dict(report)


def render_image(report: Mapping[str, Any]) -> str:
    rows = "".join(
        f"| {layer.get('role', '?')} | `{layer.get('digest', '?')}` "
        f"| {_mib(int(layer.get('size', 0)))} |\n"
        for layer in report.get("layers", [])
    )
    base = report.get("base") or {}
    return (
        "### Service image\n\n"
        f"Digest `{report['digest']}` ({report.get('runtime', '?')}, "
        f"{report.get('architecture', '?')}), {_mib(int(report.get('size', 0)))} compressed, "
        f"on `{base.get('source', '?')}`. Both stacks' task definitions name this digest.\n\n"
        "| layer | digest | size |\n|---|---|---|\n" + rows
    )


def write_github_output(path: str | None, values: Mapping[str, Any]) -> None:
    """Step outputs (`steps.<id>.outputs.<key>`); a no-op outside GitHub Actions."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in values.items():
            text = str(value)
            if "\n" in text:
                raise ValueError(f"output {key} must be one line")
            fh.write(f"{key}={text}\n")


Opener = Callable[[urllib.request.Request], Any]


class GitHubError(Exception):
    """A GitHub API call failed; the message names the call, the status and a hint."""


class GitHub:
    """The three REST calls the sticky comment needs, with an injectable opener."""

    def __init__(
        self, token: str, api: str = "https://api.github.com", opener: Opener | None = None
    ):
        if not token:
            raise UserError("GITHUB_TOKEN is not set; pass it in the step's env")
        self.token = token
        self.api = api.rstrip("/")
        self.opener = opener or urllib.request.urlopen

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.api}{path}", data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self.opener(req) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            hint = ""
            if exc.code in (401, 403, 404):
                # What a job without `pull-requests: write`, or a fork's token, gets.
                hint = "; does the job have `permissions: pull-requests: write`?"
            endpoint = path.partition("?")[0]
            raise GitHubError(
                f"GitHub API {method} {endpoint}: HTTP {exc.code} {exc.reason}{hint}"
            ) from None
        except urllib.error.URLError as exc:
            raise GitHubError(f"GitHub API {self.api}: {exc.reason}") from None

    def upsert_comment(self, repo: str, pr: int, body: str) -> tuple[str, int]:
        """Edit our earlier comment on the pull request, or create it. Returns (verb, id)."""
        for page in range(1, _MAX_PAGES + 1):
            comments = self._call(
                "GET", f"/repos/{repo}/issues/{pr}/comments?per_page=100&page={page}"
            )
            for c in comments:
                # Only a bot's comment: never edit a person's comment that quotes the marker.
                if c.get("body", "").startswith(MARKER) and c.get("user", {}).get("type") == "Bot":
                    self._call("PATCH", f"/repos/{repo}/issues/comments/{c['id']}", {"body": body})
                    return "updated", c["id"]
            if len(comments) < 100:
                break
        created = self._call("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
        return "created", created["id"]


def _repo_from_env(env: Mapping[str, str]) -> str:
    repo = env.get("GITHUB_REPOSITORY", "")
    if not _REPO_RE.match(repo):
        raise UserError(f"GITHUB_REPOSITORY={repo!r} is not owner/repo; run this inside Actions")
    return repo


def main(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    opener: Opener | None = None,
    build: Callable[..., Artifact] | None = None,
) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="ci_artifact", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build once and gather the package for upload")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--runtime", default=limits.DEFAULT_RUNTIME, choices=sorted(limits.RUNTIME_GLIBC)
    )
    p.add_argument(
        "--architecture", default=limits.DEFAULT_ARCHITECTURE, choices=limits.ARCHITECTURES
    )
    p.add_argument("--layer", action="store_true")
    s = sub.add_parser("summary", help="markdown description of a built package")
    s.add_argument("--manifest", type=Path, required=True)
    c = sub.add_parser("comment", help="create or update the pull request's package comment")
    c.add_argument("--manifest", type=Path, required=True)
    c.add_argument("--pr", type=int, required=True)
    i = sub.add_parser("image", help="check the image build's report, output its digest")
    i.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            art = prepare(
                args.out,
                runtime=args.runtime,
                architecture=args.architecture,
                layer=args.layer,
                build=build,
            )
            write_github_output(
                env.get("GITHUB_OUTPUT"),
                {
                    "manifest": art.manifest_path,
                    "sha256": art.sha256,
                    "size": art.size,
                    "unzipped-size": art.unzipped_size,
                },
            )
            print(render(art))
        elif args.command == "summary":
            print(render(load_manifest(args.manifest)))
        elif args.command == "image":
            report = image_report(args.report)
            write_github_output(env.get("GITHUB_OUTPUT"), {"digest": report["digest"]})
            print(render_image(report))
        else:
            if args.pr <= 0:
                raise UserError(f"--pr {args.pr}: a pull request number is positive")
            body = render(load_manifest(args.manifest))
            gh = GitHub(
                env.get("GITHUB_TOKEN", ""),
                env.get("GITHUB_API_URL", "https://api.github.com"),
                opener,
            )
            verb, comment_id = gh.upsert_comment(_repo_from_env(env), args.pr, body)
            print(f"{verb} comment {comment_id} on pull request #{args.pr}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GitHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
