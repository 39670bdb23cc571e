"""The one test that installs real wheels from the package registry."""

import zipfile

import pytest

from lambda_pkg.api import ensure_artifact
from lambda_pkg.interpreters import find_interpreter
from lambda_pkg.lock import lock_project
from lambda_pkg.verify import verify

from .conftest import write

pytestmark = pytest.mark.network


def test_real_wheels_for_python312_x86_64_without_pins(tmp_path):
    # GIVEN a handler that imports real dependencies, none of them pinned
    project = tmp_path / "p"
    write(project / "aws" / "__init__.py", "")
    write(
        project / "aws" / "market_data_fetcher.py",
        "import numpy, requests, six\n\ndef handler(event, context):\n"
        "    return int(numpy.arange(4).sum())\n",
    )
    write(project / "requirements_Version9.txt", "six\nrequests\nnumpy\n")
    # WHEN it is locked (uv, from PyPI) and built for the default target
    lock_project(project, targets=[("python3.12", "x86_64")])
    art = ensure_artifact(project_dir=project, runtime="python3.12", architecture="x86_64")
    # THEN numpy is a CPython 3.12 manylinux x86_64 wheel within glibc 2.34 (the audit passed)
    dists = {d.name: d for d in art.details.distributions}
    assert {"six", "requests", "numpy", "urllib3", "idna", "certifi"} <= set(dists)
    wheel = dists["numpy"].wheel
    assert "-cp312-" in wheel
    assert "manylinux" in wheel
    assert wheel.endswith("x86_64.whl")
    with zipfile.ZipFile(art.path) as zf:
        names = zf.namelist()
    assert not any("/tests/" in n and n.startswith("numpy/") for n in names)
    assert "numpy/testing/__init__.py" in names  # numpy imports it: never stripped
    # AND, where python3.12 exists, the handler imports from the package alone
    result = verify(art.path)
    assert result.ok, result.problems
    if find_interpreter("3.12"):
        assert result.import_seconds is not None
        assert any(n.endswith(".cpython-312.pyc") for n in names)
