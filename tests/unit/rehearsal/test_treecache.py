"""The unpacked-package cache (localcloud/treecache.py, localcloud.code.unpacked): a
package is unzipped once per sha256, reused while intact, and never used half-made or
changed; the handler run from it leaves it as it was."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

from infra.rehearsal import invoker
from localcloud import treecache
from localcloud.code import unpacked
from tests.unit.rehearsal.helpers import make_zip

HANDLER = """\
import helper
def handler(event, context):
    return {"answer": helper.ANSWER}
"""
PACKAGE = make_zip({"fn.py": HANDLER, "helper.py": "ANSWER = 42\n"})
DIGEST = hashlib.sha256(PACKAGE).hexdigest()


def _env():
    return invoker.function_env(
        {}, endpoint_url="http://127.0.0.1:9", function_name="fn", memory=128, region="us-east-1"
    )


def _run(task, tmp_path):
    return invoker.invoke(
        python=sys.executable, task_dir=task, runtime=str(invoker.runtime_dir(tmp_path / "rt")),
        handler="fn.handler", event={}, env=_env(), timeout=30,
    )  # fmt: skip


def _files(tree):
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))


def test_the_package_is_unzipped_once_and_the_handler_leaves_it_unchanged(tmp_path):
    cache = tmp_path / "cache"
    # GIVEN a package unzipped into the cache
    task, cached = unpacked(PACKAGE, DIGEST, cache)
    assert cached is False and _files(task) == ["fn.py", "helper.py"]
    # WHEN the handler runs from it (importing a module that has no .pyc in the package)
    inv = _run(task, tmp_path)
    assert inv.ok, inv.error
    assert inv.result == {"answer": 42}
    # THEN it wrote nothing there (no __pycache__), and the next run reuses the tree
    assert _files(task) == ["fn.py", "helper.py"]
    again, cached = unpacked(PACKAGE, DIGEST, cache)
    assert (again, cached) == (task, True)
    # AND the tree is read-only, as Lambda's task directory is
    assert not any(p.stat().st_mode & 0o222 for p in [task, *task.rglob("*")])


def test_bytecode_is_still_written_outside_the_task_dir(tmp_path):
    # GIVEN a handler that imports a module from a directory after the task dir, as
    # boto3 comes from the runtime dir (compiling botocore afresh would cost seconds)
    package = make_zip({"fn.py": "import dep\n" + HANDLER, "helper.py": "ANSWER = 42\n"})
    task, _ = unpacked(package, hashlib.sha256(package).hexdigest(), tmp_path / "c")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "dep.py").write_text("X = 1\n")
    # WHEN it is invoked
    inv = invoker.invoke(
        python=sys.executable, task_dir=task, runtime=str(runtime), handler="fn.handler",
        event={}, env=_env(), timeout=30,
    )  # fmt: skip
    assert inv.ok, inv.error
    # THEN that module's bytecode was cached beside it, and none in the task dir
    assert [p.name.split(".")[0] for p in (runtime / "__pycache__").iterdir()] == ["dep"]
    assert _files(task) == ["fn.py", "helper.py"]


def test_a_changed_entry_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    task, _ = unpacked(PACKAGE, DIGEST, cache)
    # GIVEN a cached tree written into after it was sealed (as a handler run as root can)
    os.chmod(task, stat.S_IRWXU)
    os.chmod(task / "helper.py", stat.S_IRUSR | stat.S_IWUSR)
    (task / "helper.py").write_text("ANSWER = 7\n")
    # WHEN the package is asked for again
    again, cached = unpacked(PACKAGE, DIGEST, cache)
    # THEN the entry was unzipped afresh, with the package's own bytes
    assert cached is False
    assert (again / "helper.py").read_text() == "ANSWER = 42\n"
    assert [p.name for p in cache.iterdir()] == [DIGEST]


def test_a_partial_entry_is_not_used(tmp_path):
    # GIVEN an entry holding half a tree and no seal (a crash, or an older layout)
    cache = tmp_path / "cache"
    (cache / DIGEST / "tree").mkdir(parents=True)
    (cache / DIGEST / "tree" / "fn.py").write_text(HANDLER)
    # WHEN the package is asked for
    task, cached = unpacked(PACKAGE, DIGEST, cache)
    # THEN it was unzipped whole, and runs
    assert cached is False and _files(task) == ["fn.py", "helper.py"]
    assert _run(task, tmp_path).result == {"answer": 42}


def test_prune_keeps_the_used_entries_and_the_most_recent_others(tmp_path):
    # GIVEN five entries used one after another, oldest first
    cache = tmp_path / "cache"
    keys = []
    for n in range(5):
        data = make_zip({"fn.py": f"N = {n}\n"})
        keys.append(hashlib.sha256(data).hexdigest())
        tree, _ = unpacked(data, keys[-1], cache)
        os.utime(tree.parent, (n, n))
    (cache / ".unpack-another-run").mkdir()
    # WHEN the cache is pruned to the oldest one and two others
    treecache.prune(cache, {keys[0]}, extra=2)
    # THEN the oldest (in use) and the two most recent remain, read-only trees removed
    # whole; another run's staging directory is left alone
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [keys[0], keys[3], keys[4], ".unpack-another-run"]
    )
    assert stat.S_ISDIR((cache / keys[4] / "tree").stat().st_mode)
