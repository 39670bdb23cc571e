"""Running the service's task from its image's own layers (infra/rehearsal/taskrun.py),
on a small image laid out as lambda_pkg's builder lays one out."""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import io
import json
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from infra.artifact import ServiceImage
from infra.rehearsal import taskrun
from infra.rehearsal.errors import RehearsalError
from lambda_pkg.errors import UserError

HELLO = """\
import json, os, sys
import dep
print(json.dumps({"dep": dep.VALUE, "cwd": os.getcwd(), "argv": sys.argv[1:],
                  "heartbeat": os.environ["HEARTBEAT_FILE"], "home": os.environ["HOME"],
                  "endpoint": os.environ["AWS_ENDPOINT_URL"], "table": os.environ["LEDGER_TABLE"],
                  "site": "site" in sys.modules}))
"""


def _blob(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = root / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _layer(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(buf.getvalue(), mtime=0)


def make_image(root: Path, *, ours: bool = True) -> ServiceImage:
    """base + dependencies + code layers; the builder's history marks the last two."""
    layers = [
        _layer({"usr/local/bin/python3": "not run\n"}),
        _layer({"opt/ctb/deps/dep.py": "VALUE = 42\n"}),
        _layer({"opt/ctb/app/hello.py": HELLO}),
    ]
    history = [{"created_by": "base"}]
    if ours:
        history += [{"created_by": "lambda_pkg image: dependencies layer"},
                    {"created_by": "lambda_pkg image: code layer"}]  # fmt: skip
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "history": history,
        "config": {"Entrypoint": ["python", "-m", "hello"], "WorkingDir": "/opt/ctb/app",
                   "Env": ["PYTHONPATH=/opt/ctb/app:/opt/ctb/deps", "HOME=/tmp"],
                   "Volumes": {"/tmp": {}}},
    }).encode()  # fmt: skip
    descs = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _blob(root, data),
         "size": len(data)} for data in layers
    ]  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _blob(root, config), "size": len(config)},
        "layers": descs,
    }).encode()  # fmt: skip
    return ServiceImage(_blob(root, manifest), root, "x86_64", "test", declares_tmp_volume=True)


def test_the_task_runs_from_its_own_layers_with_the_task_environment(tmp_path):
    # GIVEN an image and the task definition's environment (which tries to redirect AWS)
    image = make_image(tmp_path / "image")
    cache = tmp_path / "cache"
    unpacked = taskrun.unpack(image, cache)
    task_env = {"HEARTBEAT_FILE": "/tmp/ctb/heartbeat.json", "LEDGER_TABLE": "ledger",
                "AWS_ENDPOINT_URL": "https://example.invalid"}  # fmt: skip
    task = taskrun.Task(
        unpacked, python=sys.executable, task_env=task_env,
        endpoint_url="http://127.0.0.1:1", region="us-east-1", work=tmp_path / "work",
    )  # fmt: skip
    # WHEN its entry point runs
    done = task.run("--replay", "30", timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    # THEN only the builder's layers were unpacked (the base is the target Python's job)
    assert [layer["role"] for layer in unpacked.layers] == ["dependencies", "code"]
    assert not any((root / "usr").exists() for root in unpacked.roots)
    # AND the code ran in the image's working directory, finding its dependency layer
    assert seen["dep"] == 42 and seen["argv"] == ["--replay", "30"]
    assert seen["cwd"].endswith("/opt/ctb/app")
    # AND /tmp (the task's volume) is a private directory, the endpoint the emulator's
    tmp = str(tmp_path / "work" / "task-tmp")
    assert seen["heartbeat"] == tmp + "/ctb/heartbeat.json" and seen["home"] == tmp
    assert seen["endpoint"] == "http://127.0.0.1:1" and seen["table"] == "ledger"
    # AND nothing of this machine's site-packages was on the path (-S)
    assert seen["site"] is False
    assert done.command[:2] == ["python", "-S"]
    # AND a second unpack reuses the layers, by digest
    assert all(layer["cached"] for layer in taskrun.unpack(image, cache).layers)


def test_an_image_without_the_builders_layers_is_refused(tmp_path):
    image = make_image(tmp_path / "image", ours=False)
    with pytest.raises(RehearsalError, match="cannot tell its code from its base"):
        taskrun.unpack(image, tmp_path / "cache")


def test_without_the_stacks_python_the_rehearsal_says_how_to_go_on():
    with pytest.raises(UserError) as err:
        taskrun.check_target_python("python3.99")
    assert "no python3.99 on this machine" in str(err.value)
    assert "--config strategyEnabled=false" in str(err.value)


def test_the_image_env_defaults_to_the_local_base_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("CTB_IMAGE_LAYOUT", raising=False)
    monkeypatch.delenv("CTB_IMAGE_BASE", raising=False)
    assert taskrun.image_env() == {"CTB_IMAGE_BASE": "local"}
    monkeypatch.setenv("CTB_IMAGE_BASE", "/some/layout")
    assert taskrun.image_env() == {"CTB_IMAGE_BASE": "/some/layout"}
    monkeypatch.setenv("CTB_IMAGE_LAYOUT", "/prebuilt")
    assert taskrun.image_env() == {}


def test_runs_unpacking_the_same_image_at_once_share_the_cache(tmp_path):
    # GIVEN one layer cache (as every run on a machine shares) and another run's
    # unpacking in progress
    image = make_image(tmp_path / "image")
    cache = tmp_path / "cache"
    (cache / ".unpack-other").mkdir(parents=True)
    for n in range(taskrun.KEEP_LAYERS + 2):
        (cache / f"{n:064x}").mkdir()
    # WHEN eight runs unpack the same image at the same moment
    barrier = threading.Barrier(8)

    def one() -> list[dict]:
        barrier.wait()
        return list(taskrun.unpack(image, cache).layers)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: one(), range(8)))  # re-raises any run's error
    # THEN each layer was placed by exactly one run, the others used it
    for n, layer in enumerate(runs[0]):
        assert [run[n]["cached"] for run in runs].count(False) == 1, layer
        assert (cache / layer["digest"].split(":")[1]).is_dir()
    # AND the other run's half-unpacked directory was left alone, and no staging is left
    assert (cache / ".unpack-other").is_dir()
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == [".unpack-other"]
