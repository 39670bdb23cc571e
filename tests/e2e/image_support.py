"""Real parts for the image tests: Debian's docker-registry on a free 127.0.0.1 port,
and podman with runc. A missing tool is installed with scripts/install_test_tools.sh
when the tests run as root (as CI does), else the test skips saying how to install it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install_test_tools.sh"
# podman as it works on these machines (crun and cgroup options fail here).
PODMAN_RUN = (
    "podman", "--runtime", "runc", "run", "--rm", "--network", "none",
    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
)  # fmt: skip


def _which(cmd: str) -> str | None:
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def require_tool(cmd: str, package: str) -> str:
    """The tool's path; installs it as root (one installer at a time), else skips, or
    fails under CI=true: there scripts/test.sh installs the tools first, so a missing
    one is a broken setup, not a reason to pass without the test."""
    if found := _which(cmd):
        return found
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{cmd} is not installed (CI): scripts/install_test_tools.sh installs it")
        pytest.skip(f"{cmd} is not installed: sudo apt-get install -y {package} "
                    "(or sudo scripts/install_test_tools.sh)")  # fmt: skip
    with open("/tmp/ctb-install-test-tools.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["bash", str(INSTALL)], check=False, timeout=900)
    if found := _which(cmd):
        return found
    pytest.fail(f"{cmd} is missing and scripts/install_test_tools.sh did not install it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# htpasswd line for user "ctb", password "s3cret" (bcrypt, cost 4: quick to verify).
HTPASSWD = "ctb:$2b$04$pKjH0y0Ov85yjsZeMGBV/.f7PDlGibbiLOvWijarwJj.eyeFUtMMW\n"


@contextlib.contextmanager
def registry_server(workdir: Path, *, basic_auth: bool = False) -> Iterator[str]:
    """A docker-registry on a free loopback port with its own storage; yields host:port.
    With basic_auth, it asks for user ctb / password s3cret (as ECR asks for AWS / token)."""
    exe = require_tool("docker-registry", "docker-registry")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'data'}}}, "
        "delete: {enabled: true}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    if basic_auth:
        (workdir / "htpasswd").write_text(HTPASSWD)
        with open(config, "a") as fh:
            fh.write(f"auth: {{htpasswd: {{realm: test, path: {workdir / 'htpasswd'}}}}}\n")
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115  closed below
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and asking for credentials
                    break
                raise
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start: {(workdir / 'registry.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def podman_load(layout: Path) -> str:
    """Pull an OCI layout into podman's storage; returns the image id."""
    require_tool("podman", "podman")
    require_tool("runc", "runc")
    out = subprocess.run(
        ["podman", "pull", "-q", f"oci:{layout}"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def podman_run(
    image_id: str, *args: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN_RUN, *options, image_id, *args],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def podman_remove(image_id: str) -> None:
    subprocess.run(["podman", "rmi", "-f", image_id], capture_output=True, check=False)
