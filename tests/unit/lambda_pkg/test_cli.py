"""The command line: results on stdout, one-line errors on stderr, exit 2 or 1."""

import json
import zipfile
from pathlib import Path

import pytest

from lambda_pkg import builder, cli, limits
from lambda_pkg.__main__ import main
from lambda_pkg.api import ensure_artifact, load_manifest
from lambda_pkg.errors import UserError
from lambda_pkg.reqfile import DEFAULT_NAMES

from .conftest import HOST_RUNTIME, make_elf, make_project, offline, write


@pytest.fixture
def run(capsys, wheelhouse):
    def _run(*argv, offline_pip=True):
        args = list(argv)
        if args[0] == "build" and offline_pip:
            # Lock first, as a user does after editing the requirements; a refusal of
            # the requirements (no wheel, a conflict) comes from this step.
            locked = _lock_for(args, wheelhouse)
            if locked is not None and locked != 0:
                out, err = capsys.readouterr()
                return locked, out, err
            capsys.readouterr()
            args += [f"--pip-arg={a}" for a in offline(wheelhouse)]
        code = main(args)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def _lock_for(args, wheelhouse):
    """Run `lock` for the target a build command line names, when its project has
    requirements; None when there is nothing to lock."""

    def value(flag, default):  # the last one wins, as in argparse
        return args[len(args) - 1 - args[::-1].index(flag) + 1] if flag in args else default

    source = Path(value("--source", "."))
    if not any((source / n).is_file() for n in DEFAULT_NAMES) or "--requirements" in args:
        return None
    target = f"{value('--runtime', HOST_RUNTIME)}/{value('--architecture', 'x86_64')}"
    runtime, arch = target.split("/")
    if runtime not in limits.RUNTIME_GLIBC or arch not in limits.ARCHITECTURES:
        return None
    return cli.main(["lock", "--source", str(source), "--target", target, "--no-index",
                     "--find-links", str(wheelhouse)])  # fmt: skip


def assert_one_line_error(err, pattern):
    import re

    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


def test_build_json_is_the_manifest_and_nothing_else(run, project):
    code, out, err = run("build", "--source", str(project), "--runtime", HOST_RUNTIME, "--json")
    assert code == 0, err
    result = json.loads(out)  # stdout is exactly one JSON document
    assert result["built"] is True
    assert result["sha256"] == load_manifest(result["manifest_path"]).sha256
    assert result["sha256_b64"] and result["largest_distributions"][0]["name"] in {
        "tinydep",
        "leafdep",
    }
    assert err == ""  # not a terminal: no progress
    again = json.loads(
        run("build", "--source", str(project), "--runtime", HOST_RUNTIME, "--json")[1]
    )
    assert again["built"] is False
    assert again["sha256"] == result["sha256"]


def test_output_places_zip_and_manifest_atomically(run, project, tmp_path):
    out_zip = tmp_path / "out" / "lambda_deployment.zip"
    code, out, err = run(
        "build", "--source", str(project), "--runtime", HOST_RUNTIME, "--output", str(out_zip)
    )
    assert code == 0, err
    assert f"built: {out_zip}" in out
    placed = load_manifest(tmp_path / "out" / "lambda_deployment.manifest.json")
    assert placed.path == out_zip
    assert sorted(p.name for p in out_zip.parent.iterdir()) == [
        "lambda_deployment.manifest.json",
        "lambda_deployment.zip",
    ]
    # a later failing build leaves that output as it was
    before = out_zip.read_bytes()
    write(project / "backend" / "core.py", "KEY = 'AKIAABCDEFGHIJKLMNOP'\n")
    code, out, err = run(
        "build", "--source", str(project), "--runtime", HOST_RUNTIME, "--output", str(out_zip)
    )
    assert code == 2
    assert out_zip.read_bytes() == before
    assert (
        load_manifest(tmp_path / "out" / "lambda_deployment.manifest.json").sha256 == placed.sha256
    )


def test_layer_output_names(run, project, tmp_path):
    out_zip = tmp_path / "pkg.zip"
    code, _, err = run(
        "build",
        "--source",
        str(project),
        "--runtime",
        HOST_RUNTIME,
        "--layer",
        "--output",
        str(out_zip),
    )
    assert code == 0, err
    art = load_manifest(tmp_path / "pkg.manifest.json")
    assert art.layer.path == tmp_path / "pkg-layer.zip"


@pytest.mark.parametrize(
    ("setup", "pattern"),
    [
        ("missing_source", r"^error: source directory .*nope does not exist"),
        ("bad_requirement", r"^error: requirements_Version9\.txt:2: 'tinydep=>1' "
                            r"is not a valid requirement"),
        ("no_wheel", r"^error: no wheel of doesnotexist for python3\.\d+ on x86_64"),
        ("conflict", r"^error: conflicting requirements"),
        ("oversize", r"^error: package too large: .* over Lambda's 100-byte limit"),
        ("audit", r"^error: audit failed: armext: armext/_speed\.so: built for aarch64"),
        ("secret", r"^error: secret scan: backend/core\.py:1: looks like a private key block"),
        ("bad_option", r"^error: .*unrecognized arguments: --frobnicate"),

    ],
)  # fmt: skip
def test_user_errors_exit_2_with_one_line(run, tmp_path, monkeypatch, setup, pattern):
    project = make_project(tmp_path / "p")
    runtime = HOST_RUNTIME
    extra = []
    if setup == "missing_source":
        project = tmp_path / "nope"
    elif setup == "bad_requirement":
        write(project / "requirements_Version9.txt", "tinydep\ntinydep=>1\n")
    elif setup == "no_wheel":
        write(project / "requirements_Version9.txt", "doesnotexist\n")
    elif setup == "conflict":
        write(project / "requirements_Version9.txt", "tinydep\nleafdep==1.0\n")
    elif setup == "oversize":
        monkeypatch.setattr(limits, "UNZIPPED_MAX", 100)
    elif setup == "audit":
        write(project / "requirements_Version9.txt", "armext\n")
        runtime = "python3.12"
        extra = ["--no-bytecode"]
    elif setup == "secret":
        write(
            project / "backend" / "core.py",
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\n",
        )
    elif setup == "bad_option":
        extra = ["--frobnicate"]
    code, out, err = run("build", "--source", str(project), "--runtime", runtime, "--json", *extra)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, pattern)
    assert not list((project / ".build").glob("artifacts/*"))


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--runtime", "python2.7"], r"^error: .*argument --runtime: invalid choice: 'python2\.7'"),
        (["--architecture", "sparc"],
         r"^error: .*argument --architecture: invalid choice: 'sparc'"),
        (["--requirements", "{tmp}/nope.txt"], r"^error: --requirements .*nope\.txt: no such file"),
        (["--cache-dir", "{tmp}/file/cache"],
         r"^error: cannot write the build cache \(.*file/cache/locks: Not a directory\)"),
        (["--source", "{tmp}/p/bot.py"], r"^error: source .*bot\.py is not a directory"),
    ],
)  # fmt: skip
def test_more_user_errors_exit_2_with_one_line(run, tmp_path, argv, pattern):
    project = make_project(tmp_path / "p")
    write(tmp_path / "file", "")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run("build", "--source", str(project), "--runtime", HOST_RUNTIME, *argv)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, pattern)
    assert not list(tmp_path.rglob("artifacts/*"))


def test_pip_failure_is_one_line_with_the_log(run, project):
    # pip itself failing (not a missing wheel or a hash) is not the user's input: exit 1
    code, out, err = run(
        "build", "--source", str(project), "--runtime", HOST_RUNTIME, "--pip-arg=--timeout=soon"
    )
    assert code == 1
    assert out == ""
    assert_one_line_error(
        err, r"^error: pip failed: .*--timeout: invalid .*'soon' \(pip log: .*\.log\)"
    )
    assert not list((project / ".build").glob("artifacts/*"))


def test_a_pip_arg_that_is_not_about_where_wheels_come_from_is_refused(run, project):
    code, _, err = run(
        "build", "--source", str(project), "--runtime", HOST_RUNTIME, "--pip-arg=--no-such-opt"
    )
    assert code == 2
    assert_one_line_error(err, r"^error: --pip-arg --no-such-opt: only options that say where")


def test_unexpected_errors_exit_1_without_traceback(run, project, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(builder, "ensure", crash)  # the build step, as cli calls it
    monkeypatch.delenv("DEBUG", raising=False)
    code, _, err = run("build", "--source", str(project), "--runtime", HOST_RUNTIME)
    assert code == 1
    # Worded as the operating commands word it (errors.report_failure).
    assert_one_line_error(err, r"^error: RuntimeError: boom \(run with DEBUG=true for details\)$")
    # DEBUG=true, the project-wide switch, adds the traceback before the line
    monkeypatch.setenv("DEBUG", "true")
    code, _, err = run("build", "--source", str(project), "--runtime", HOST_RUNTIME)
    assert code == 1
    assert err.startswith("Traceback") and err.rstrip().endswith("RuntimeError: boom")


def test_lambda_pkg_debug_is_not_a_switch(run, project, monkeypatch):
    # DEBUG=true is the one switch; the old LAMBDA_PKG_DEBUG adds no traceback.
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(builder, "ensure", crash)  # the build step, as cli calls it
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.setenv("LAMBDA_PKG_DEBUG", "1")
    code, _, err = run("build", "--source", str(project), "--runtime", HOST_RUNTIME)
    assert code == 1
    assert_one_line_error(err, r"^error: RuntimeError: boom")


# --- verify ------------------------------------------------------------------------


def _built(run, project, *extra):
    code, out, err = run(
        "build", "--source", str(project), "--runtime", HOST_RUNTIME, "--json", *extra
    )
    assert code == 0, err
    return json.loads(out)


def test_verify_lists_checks_and_imports_the_handler(run, project):
    built = _built(run, project)
    code, out, err = run("verify", built["path"])
    assert code == 0, err + out
    assert "aws/market_data_fetcher.py" in out or "more" in out
    assert "handler imported in" in out
    assert out.strip().endswith("OK")
    code, out, _ = run("verify", built["path"], "--json")
    result = json.loads(out)
    assert result["ok"] is True
    assert result["import_seconds"] is not None
    assert result["entries"] == built["files"]


def test_verify_with_a_layer_imports_across_both(run, project):
    built = _built(run, project, "--layer")
    code, out, err = run("verify", built["path"], "--json")
    assert code == 0, err
    assert json.loads(out)["import_seconds"] is not None


def test_verify_fails_on_missing_handler_and_broken_import(run, project, tmp_path):
    write(project / "aws" / "market_data_fetcher.py", "import not_installed_anywhere\n")
    built = _built(run, project)
    code, out, err = run("verify", built["path"], "--json")
    assert code == 2
    problems = json.loads(out)["problems"]
    assert any("No module named 'not_installed_anywhere'" in p for p in problems)
    assert_one_line_error(err, r"^error: verify .*: import aws\.market_data_fetcher failed")
    code, _, err = run("verify", built["path"], "--handler", "aws/other.py")
    assert code == 2
    assert_one_line_error(err, r"handler aws/other\.py is not in the package")
    # upload's spelling of the option works too
    code, _, err = run("verify", built["path"], "--handler-file", "aws/other.py")
    assert code == 2
    assert_one_line_error(err, r"handler aws/other\.py is not in the package")


def test_verify_reruns_the_audit_on_a_foreign_zip(run, tmp_path):
    # GIVEN a zip made elsewhere, with an arm64 library and a key in a module
    z = tmp_path / "foreign.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("aws/market_data_fetcher.py", "def handler(e, c): pass\n")
        zf.writestr("aws/keys.py", "K = 'AKIAABCDEFGHIJKLMNOP'\n")
        zf.writestr("native/_x.so", make_elf(183))
        zf.writestr("backend/.env", "X=1\n")
    code, out, err = run("verify", str(z), "--json", "--no-import")
    assert code == 2
    problems = json.loads(out)["problems"]
    assert "audit: native/_x.so: built for aarch64, but the target is x86_64" in problems
    assert "secret scan: aws/keys.py:1: looks like an AWS access key id" in problems
    assert "secret scan: backend/.env:1: a .env file is in the package" in problems
    assert "(and 2 more)" in err


def test_verify_errors(run, tmp_path):
    code, _, err = run("verify", str(tmp_path / "missing.zip"))
    assert code == 2
    assert_one_line_error(err, r"no such package")
    code, _, err = run("verify", str(tmp_path))
    assert code == 2
    assert_one_line_error(err, r"is a directory; pass the package's \.zip file")
    code, _, err = run("verify", str(tmp_path / "x.zip"), "--runtime", "python2.7")
    assert code == 2
    assert_one_line_error(err, r"argument --runtime: invalid choice: 'python2\.7'")
    write(tmp_path / "bad.zip", "not a zip")
    code, _, err = run("verify", str(tmp_path / "bad.zip"))
    assert code == 2
    assert_one_line_error(err, r"not a zip file")


def test_verify_of_a_foreign_architecture_audits_but_does_not_import(run, tmp_path):
    project = make_project(tmp_path / "p", requirements="onlyarm\n")
    built = _built(
        run, project, "--runtime", "python3.12", "--architecture", "arm64", "--no-bytecode"
    )
    code, out, err = run("verify", built["path"], "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["architecture"] == "arm64"
    assert result["import_seconds"] is None
    assert any("import check skipped" in n for n in result["notes"])


@pytest.mark.parametrize("runtime", ["python3.9", "python3.10"])
def test_runtimes_lambda_deprecated_are_refused(run, project, runtime):
    # Issue 11: the supported runtimes are lambda_pkg.limits.RUNTIMES, defined once.
    assert runtime not in limits.RUNTIMES
    code, out, err = run("build", "--source", str(project), "--runtime", runtime)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, rf"argument --runtime: invalid choice: '{runtime}'")
    with pytest.raises(UserError, match=rf"--runtime '{runtime}' is not supported"):
        ensure_artifact(project_dir=project, runtime=runtime)
