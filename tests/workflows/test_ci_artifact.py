"""The workflows' package helper (.github/scripts/ci_artifact.py), without network:
builds are faked through the packager's Artifact contract, GitHub through an opener."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import urllib.error
import zipfile
from pathlib import Path

import pytest

from lambda_pkg import limits
from lambda_pkg.artifact import Artifact, write_manifest
from lambda_pkg.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "ci_artifact.py"


def _load():
    spec = importlib.util.spec_from_file_location("ci_artifact", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_artifact"] = module
    spec.loader.exec_module(module)
    return module


ci = _load()


def make_artifact(cache: Path, *, layer: bool = False, size_hint: int = 100) -> Artifact:
    """A real zip + manifest in a build cache, as ensure_artifact leaves them."""
    cache.mkdir(parents=True, exist_ok=True)
    manifest = cache / "abc123.manifest.json"

    def one(name: str, entry: str) -> Artifact:
        path = cache / name
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(entry, "x" * size_hint)
        data = path.read_bytes()
        return Artifact(
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            unzipped_size=size_hint,
            input_hash="f" * 64,
            runtime="python3.12",
            architecture="x86_64",
            builder_version="1",
            manifest_path=manifest,
        )

    art = one("abc123.zip", "aws/market_data_fetcher.py")
    if layer:
        art = Artifact(**{**art.__dict__, "layer": one("abc123-layer.zip", "python/dep.py")})
    write_manifest(art)
    return art


class FakeBuild:
    def __init__(self, art: Artifact):
        self.art = art
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> Artifact:
        self.calls.append(kwargs)
        return self.art


class TestPrepare:
    def test_gathers_zip_and_manifest_and_verifies_them(self, tmp_path):
        built = make_artifact(tmp_path / "cache")
        build = FakeBuild(built)
        out = tmp_path / "dist"
        art = ci.prepare(out, build=build, project_dir=tmp_path)
        assert art.manifest_path == out / "manifest.json"
        assert art.path == out / "abc123.zip"
        assert art.sha256 == built.sha256
        assert hashlib.sha256(art.path.read_bytes()).hexdigest() == built.sha256
        assert build.calls == [
            {
                "project_dir": tmp_path,
                "runtime": limits.DEFAULT_RUNTIME,
                "architecture": limits.DEFAULT_ARCHITECTURE,
                "layer": False,
            }
        ]

    def test_layer_is_gathered_too(self, tmp_path):
        built = make_artifact(tmp_path / "cache", layer=True)
        art = ci.prepare(tmp_path / "dist", build=FakeBuild(built), layer=True)
        assert art.layer is not None
        assert art.layer.path == tmp_path / "dist" / "abc123-layer.zip"
        assert art.layer.sha256 == built.layer.sha256

    def test_a_zip_that_does_not_match_its_manifest_is_refused(self, tmp_path):
        built = make_artifact(tmp_path / "cache")
        built.path.write_bytes(b"tampered")
        with pytest.raises(UserError, match="does not match its manifest"):
            ci.prepare(tmp_path / "dist", build=FakeBuild(built))

    def test_main_writes_step_outputs(self, tmp_path, capsys):
        built = make_artifact(tmp_path / "cache")
        outputs = tmp_path / "github_output"
        code = ci.main(
            ["prepare", "--out", str(tmp_path / "dist"), "--architecture", "arm64"],
            env={"GITHUB_OUTPUT": str(outputs)},
            build=FakeBuild(built),
        )
        assert code == 0
        lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
        assert lines == {
            "manifest": str(tmp_path / "dist" / "manifest.json"),
            "sha256": built.sha256,
            "size": str(built.size),
            "unzipped-size": str(built.unzipped_size),
        }
        assert built.sha256 in capsys.readouterr().out

    def test_main_turns_user_errors_into_exit_2(self, tmp_path, capsys):
        def failing(**_):
            raise UserError("requirements_Version9.txt:3: bad requirement line")

        code = ci.main(["prepare", "--out", str(tmp_path)], env={}, build=failing)
        assert code == 2
        assert "bad requirement line" in capsys.readouterr().err


class TestRender:
    def test_shows_sha256_codesha256_and_sizes(self, tmp_path):
        art = make_artifact(tmp_path)
        body = ci.render(art)
        assert body.startswith(ci.MARKER)
        assert f"`{art.sha256}`" in body
        assert f"`{art.sha256_b64}`" in body
        assert f"{art.size:,} bytes" in body
        assert "of the 50 MiB direct-upload limit" in body
        assert "python3.12 / x86_64" in body
        assert ":warning:" not in body

    def test_warns_near_the_unzipped_budget_and_flags_going_over(self, tmp_path):
        art = make_artifact(tmp_path)
        near = ci.render(
            Artifact(**{**art.__dict__, "unzipped_size": int(0.9 * limits.UNZIPPED_MAX)})
        )
        row = next(line for line in near.splitlines() if line.startswith("| unzipped"))
        assert "90.0% :warning:" in row
        over = ci.render(Artifact(**{**art.__dict__, "unzipped_size": limits.UNZIPPED_MAX + 1}))
        row = next(line for line in over.splitlines() if line.startswith("| unzipped"))
        assert ":x:" in row

    def test_a_zip_over_the_direct_upload_limit_is_fine_through_s3(self, tmp_path):
        art = make_artifact(tmp_path)
        big = ci.render(Artifact(**{**art.__dict__, "size": limits.DIRECT_UPLOAD_ZIPPED_MAX + 1}))
        row = next(line for line in big.splitlines() if line.startswith("| zipped"))
        assert "(fine: deployed through S3)" in row
        small = ci.render(art)
        assert "deployed through S3" not in small

    def test_unzipped_budget_counts_the_layer(self, tmp_path):
        art = make_artifact(tmp_path, layer=True, size_hint=1000)
        body = ci.render(art)
        assert "| unzipped, function + layers | 2,000 bytes" in body
        assert f"`{art.layer.sha256}`" in body


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeGitHub:
    """Answers the REST calls the sticky comment makes, and records them."""

    def __init__(self, pages: list[list[dict]]):
        self.pages = pages
        self.requests: list[tuple[str, str, dict | None]] = []

    def __call__(self, req):
        body = json.loads(req.data) if req.data else None
        self.requests.append((req.get_method(), req.full_url, body))
        assert req.get_header("Authorization") == "Bearer t0ken"
        if req.get_method() == "GET":
            page = int(req.full_url.rsplit("page=", 1)[1])
            data = self.pages[page - 1] if page <= len(self.pages) else []
        else:
            data = {"id": 99}
        return FakeResponse(json.dumps(data).encode())


def bot(id_: int, body: str) -> dict:
    return {"id": id_, "body": body, "user": {"login": "github-actions[bot]", "type": "Bot"}}


def person(id_: int, body: str) -> dict:
    return {"id": id_, "body": body, "user": {"login": "alice", "type": "User"}}


class TestStickyComment:
    def test_creates_the_comment_the_first_time(self):
        gh = FakeGitHub([[person(1, "LGTM")]])
        verb, cid = ci.GitHub("t0ken", opener=gh).upsert_comment("acme/bot", 7, "body")
        assert (verb, cid) == ("created", 99)
        method, url, payload = gh.requests[-1]
        assert method == "POST"
        assert url == "https://api.github.com/repos/acme/bot/issues/7/comments"
        assert payload == {"body": "body"}

    def test_edits_its_own_comment_afterwards(self):
        gh = FakeGitHub([[person(1, "hi"), bot(5, ci.MARKER + "\nold")]])
        verb, cid = ci.GitHub("t0ken", opener=gh).upsert_comment("acme/bot", 7, "new")
        assert (verb, cid) == ("updated", 5)
        assert gh.requests[-1] == (
            "PATCH",
            "https://api.github.com/repos/acme/bot/issues/comments/5",
            {"body": "new"},
        )
        assert not any(m == "POST" for m, _, _ in gh.requests)

    def test_never_edits_a_persons_comment_that_quotes_the_marker(self):
        gh = FakeGitHub([[person(3, ci.MARKER + " quoted")]])
        verb, _ = ci.GitHub("t0ken", opener=gh).upsert_comment("acme/bot", 7, "new")
        assert verb == "created"

    def test_finds_its_comment_on_a_later_page(self):
        first = [person(i, "chatter") for i in range(100)]
        gh = FakeGitHub([first, [bot(500, ci.MARKER)]])
        verb, cid = ci.GitHub("t0ken", opener=gh).upsert_comment("acme/bot", 7, "new")
        assert (verb, cid) == ("updated", 500)
        assert gh.requests[1][1].endswith("page=2")

    def test_main_posts_the_rendered_package(self, tmp_path, capsys):
        art = make_artifact(tmp_path / "dist")
        gh = FakeGitHub([[]])
        env = {
            "GITHUB_TOKEN": "t0ken",
            "GITHUB_REPOSITORY": "acme/bot",
            "GITHUB_API_URL": "https://ghe.example/api/v3",
        }
        code = ci.main(
            ["comment", "--manifest", str(art.manifest_path), "--pr", "12"], env=env, opener=gh
        )
        assert code == 0
        method, url, payload = gh.requests[-1]
        assert (method, url) == (
            "POST",
            "https://ghe.example/api/v3/repos/acme/bot/issues/12/comments",
        )
        assert art.sha256 in payload["body"]
        assert "created comment 99 on pull request #12" in capsys.readouterr().out

    @pytest.mark.parametrize(
        ("env", "argv_pr", "message"),
        [
            ({"GITHUB_REPOSITORY": "acme/bot"}, "12", "GITHUB_TOKEN"),
            ({"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "nope"}, "12", "GITHUB_REPOSITORY"),
            ({"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/bot"}, "0", "--pr"),
        ],
    )
    def test_main_refuses_bad_settings_with_exit_2(self, tmp_path, capsys, env, argv_pr, message):
        art = make_artifact(tmp_path / "dist")
        gh = FakeGitHub([[]])
        code = ci.main(
            ["comment", "--manifest", str(art.manifest_path), "--pr", argv_pr], env=env, opener=gh
        )
        assert code == 2
        assert message in capsys.readouterr().err
        assert gh.requests == []

    def test_summary_of_a_missing_manifest_is_a_user_error(self, tmp_path, capsys):
        assert ci.main(["summary", "--manifest", str(tmp_path / "none.json")], env={}) == 2
        assert "no such manifest" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            urllib.error.HTTPError("u", 403, "Forbidden", None, None),  # type: ignore[arg-type]
            "GitHub API GET /repos/acme/bot/issues/12/comments: HTTP 403 Forbidden; "
            "does the job have `permissions: pull-requests: write`?",
        ),
        (urllib.error.URLError("Name or service not known"), "Name or service not known"),
    ],
)
def test_a_failed_github_call_is_one_line_exit_1(tmp_path, capsys, failure, message):
    art = make_artifact(tmp_path / "dist")

    def opener(req):
        raise failure

    env = {"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/bot"}
    argv = ["comment", "--manifest", str(art.manifest_path), "--pr", "12"]
    assert ci.main(argv, env=env, opener=opener) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_step_outputs_must_be_single_lines(tmp_path):
    with pytest.raises(ValueError, match="one line"):
        ci.write_github_output(str(tmp_path / "out"), {"k": "a\nb"})
    ci.write_github_output(None, {"k": "ignored outside Actions"})
