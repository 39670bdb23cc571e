import os
import re

import pytest

from lambda_pkg.errors import UserError
from lambda_pkg.reqfile import find_requirements, parse
from lambda_pkg.sources import collect_sources

from .conftest import make_project, write


def test_only_the_bots_files_are_collected(tmp_path):
    # GIVEN a project with the bot's code next to everything that must never ship
    root = make_project(tmp_path / "p")
    for junk in [
        "__main__.py", "conftest.py", "setup.py", "test_bot.py", "requirements.txt",
        "infra/__init__.py", "infra/storage.py", "lambda_pkg/__init__.py", "tests/test_x.py",
        ".git/config", ".venv/pyvenv.cfg", ".venv/lib/x.py", "Pulumi.yaml",
        "backend/__pycache__/core.cpython-312.pyc", "backend/core.pyc",
        "backend/tests/test_core.py",
        "backend/conftest.py", "backend/.mypy_cache/x.json", "backend/venv/pyvenv.cfg",
        "backend/venv/lib/site.py", "backend/pkg.egg-info/PKG-INFO", "backend/.DS_Store",
        "aws/.env.example", "aws/node_modules/x.js", "backend/editor.py~",
    ]:  # fmt: skip
        write(root / junk, "x = 1\n")
    # WHEN the sources are collected
    names = [s.arcname for s in collect_sources(root)]
    # THEN only backend/, aws/ and the bot's root modules are in, sorted
    assert names == [
        "aws/__init__.py",
        "aws/market_data_fetcher.py",
        "backend/__init__.py",
        "backend/core.py",
        "backend/data/symbols.json",
        "bot.py",
    ]


def test_modes_are_normalised(tmp_path):
    root = make_project(tmp_path / "p")
    write(root / "backend" / "tool.sh", "#!/bin/sh\n", mode=0o700)
    (root / "backend" / "core.py").chmod(0o600)
    modes = {s.arcname: s.mode for s in collect_sources(root)}
    assert modes["backend/tool.sh"] == 0o755
    assert modes["backend/core.py"] == 0o644


@pytest.mark.parametrize("name", [".env", ".env.local", ".env.PROD", "prod.env", ".prod.env"])
def test_a_dotenv_file_is_refused_by_name(tmp_path, name):
    root = make_project(tmp_path / "p")
    write(root / "backend" / "config" / name, "API_KEY=x\n")
    with pytest.raises(UserError, match=rf"backend/config/{re.escape(name)}:1"):
        collect_sources(root)


@pytest.mark.parametrize(
    ("name", "shipped"),
    [(".env.example", False), (".env.sample", False), ("example.env", True), ("env.py", True)],
)
def test_env_templates_are_not_refused(tmp_path, name, shipped):
    # Templates hold no values; hidden ones are not shipped, like every hidden file.
    root = make_project(tmp_path / "p")
    write(root / "backend" / name, "API_KEY=\n")
    names = [s.arcname for s in collect_sources(root)]
    assert ("backend/" + name in names) is shipped


def test_missing_or_empty_source_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        collect_sources(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no sources"):
        collect_sources(tmp_path / "empty")


def test_symlinked_directories_are_not_followed(tmp_path):
    root = make_project(tmp_path / "p")
    os.symlink(root, root / "backend" / "loop")
    names = [s.arcname for s in collect_sources(root)]
    assert not any("loop" in n for n in names)


# --- requirements -------------------------------------------------------------------


def test_fallback_chain(tmp_path):
    root = make_project(tmp_path / "p", requirements=None)
    # no file at all: code only, with a note that says so
    reqs, note = find_requirements(root, None)
    assert reqs is None
    assert "building the code only" in note
    # the seed's fallback name
    write(root / "requirements-lambda.txt", "six\n")
    reqs, note = find_requirements(root, None)
    assert reqs.path.name == "requirements-lambda.txt"
    assert "fallback" in note
    # the seed's main name wins over the fallback
    write(root / "requirements_Version9.txt", "requests\n")
    reqs, note = find_requirements(root, None)
    assert (reqs.path.name, reqs.names, note) == ("requirements_Version9.txt", ("requests",), None)
    # an explicit file wins over both
    other = write(tmp_path / "other.txt", "Yfinance>=0.2\n")
    reqs, _ = find_requirements(root, other)
    assert reqs.names == ("yfinance",)
    with pytest.raises(UserError, match="no such file"):
        find_requirements(root, tmp_path / "missing.txt")


def test_requirements_syntax_pip_accepts(tmp_path):
    # Index options and `name @ URL` moved to the refusals below (issue 10).
    base = write(tmp_path / "base.txt", "idna\n")
    path = write(
        tmp_path / "req.txt",
        "# comment\n"
        "--prefer-binary\n"
        "-r base.txt\n"
        "requests[socks]>=2.32 ; python_version >= '3.9'  # inline comment\n"
        "six==1.16.0 \\\n"
        "    --hash=sha256:abc\n"
        "numpy\n",
    )
    reqs = parse(path)
    assert reqs.names == ("idna", "requests", "six", "numpy")
    assert base.exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("yfinance>>=1", r"req\.txt:2: 'yfinance>>=1' is not a valid requirement"),
        ("yfinance=>0.2", r"req\.txt:2: .* did you mean 'yfinance>=0\.2'\?"),
        ("yfinance=0.2", r"req\.txt:2: .* did you mean 'yfinance==0\.2'\?"),
        ("-e ./src", r"req\.txt:2: editable requirements cannot be packaged"),
        ("--no-binary :all:", r"req\.txt:2: --no-binary is not possible"),
        ("--frobnicate", r"req\.txt:2: unsupported option '--frobnicate'"),
        ("-r missing.txt", r"req\.txt:2: -r missing.txt: no such file"),
        ("six --install-option=x", r"req\.txt:2: unsupported option"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "req.txt", f"requests\n{line}\n")
    with pytest.raises(UserError, match=message):
        parse(path)


def test_fingerprint_ignores_comments_and_checkout_path(tmp_path):
    a = write(tmp_path / "a" / "req.txt", "requests  # why\n\n# note\nsix\n")
    b = write(tmp_path / "b" / "deep" / "req.txt", "requests\nsix\n")
    c = write(tmp_path / "c" / "req.txt", "requests\nsix==1.0\n")
    assert parse(a).fingerprint == parse(b).fingerprint != parse(c).fingerprint
