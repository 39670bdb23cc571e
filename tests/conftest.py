"""Shared test settings. Each suite (unit/, infra/, e2e/) keeps its own fixtures
in its own conftest.py; only what every suite needs lives here."""

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambda_pkg.wheelstore import STORE_ENV
from localcloud.emulator import EMULATOR_ENV, MOTO_SETTINGS


def pytest_configure(config):
    # A suite started in the background (`cmd &` in a script, nohup) inherits SIGINT and
    # SIGHUP ignored, and every child it starts would too: the tests that interrupt an
    # upload or a rehearsal would then see it run on. Each test process starts from the
    # defaults (xdist's workers run this hook too).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    _share_botocore_data()
    # moto in process (mock_aws) as moto_server runs for the rehearsal: without the
    # public AMIs, which each test's fresh EC2 backend loaded again (0.6 s a test).
    for key, value in MOTO_SETTINGS.items():
        os.environ.setdefault(key, value)


def _share_botocore_data() -> None:
    """Every new boto3 Session re-reads and re-parses botocore's JSON data (service
    models, endpoints, partitions): 0.18 s for a session with three clients here. The
    code under test makes one per AwsClients, and the tests make one or more per test.
    In a test process each file is parsed once and the result shared by every session,
    as botocore already shares it between the clients of one session (it treats the
    data as read-only; a test that edits a model edits a deepcopy). Test speed only: the
    code's own behaviour, and every subprocess, are unchanged."""
    import botocore.loaders

    load_file = botocore.loaders.JSONFileLoader.load_file
    parsed: dict[str, Any] = {}

    def load_file_once(self: Any, file_path: str) -> Any:
        if file_path not in parsed:
            parsed[file_path] = load_file(self, file_path)
        return parsed[file_path]

    botocore.loaders.JSONFileLoader.load_file = load_file_once  # type: ignore[method-assign]

    # Likewise the listings of botocore's data directories: each new session's loader
    # lists every service directory again (~400 listdirs and stats a session;
    # tests/unit/aws/test_handler.py 15.9 -> 15.0 s of CPU, one run each). Keyed by the
    # search paths too.
    listed: dict[tuple[Any, ...], Any] = {}
    for name in ("list_available_services", "list_api_versions"):
        list_uncached = getattr(botocore.loaders.Loader, name)

        def list_once(self: Any, *args: Any, _list: Any = list_uncached, **kwargs: Any) -> Any:
            key = (_list, tuple(self.search_paths), *args, *sorted(kwargs.items()))
            if key not in listed:
                listed[key] = _list(self, *args, **kwargs)
            return listed[key]

        setattr(botocore.loaders.Loader, name, list_once)


def pytest_collection_modifyitems(config, items):
    # Long files first. Under `-n 2 --dist loadfile --no-loadscope-reorder`
    # (scripts/test.sh) each file goes whole to a worker in collection order, and the
    # last long file to start bounds the run: test_lock.py's real builds, handed out
    # last (xdist's own order is most tests first), left one worker idle for a minute.
    # The network files (real wheels) start first, then the e2e journeys; the short
    # unit files fill the tail. Within a weight the order is kept.
    def weight(item: pytest.Item) -> int:
        return (
            0 if item.get_closest_marker("network") else 1 if item.get_closest_marker("e2e") else 2
        )

    first: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        first[path] = min(first.get(path, 2), weight(item))
    items.sort(key=lambda item: first[item.nodeid.split("::", 1)[0]])


@pytest.fixture(scope="session", autouse=True)
def _one_wheel_store(tmp_path_factory) -> Iterator[Path]:
    """Every build in the session, in process or in a script, takes its wheels from one
    wheel store, as a user shares one between checkouts (LAMBDA_PKG_WHEEL_STORE;
    lambda_pkg/wheelstore.py): pip downloads each test wheel once per session, not once
    per test (0.9 s of a 1.2 s build test), and each later build re-hashes what it takes.
    xdist's workers share it (they run under one base temp dir). A test of what pip
    itself does starts from an empty store of its own (`own_wheel_store`)."""
    base = tmp_path_factory.getbasetemp()
    store = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "wheel-store"
    before = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = str(store)
    yield store
    if before is None:
        os.environ.pop(STORE_ENV, None)
    else:
        os.environ[STORE_ENV] = before


@pytest.fixture
def own_wheel_store(tmp_path, monkeypatch) -> Path:
    """An empty wheel store for this test alone: its builds download with pip."""
    store = tmp_path / "own-wheel-store"
    monkeypatch.setenv(STORE_ENV, str(store))
    return store


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch):
    # No test may reach real AWS or use the developer's credentials: every test
    # sees dummy ones, and no profile or config file from the home directory.
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


def pytest_collection_finish(session: pytest.Session) -> None:
    # A fresh clone has no locked wheels yet: when a selected test needs them, start
    # their download now, so it overlaps the tests before that one (tests/wheelhouse.py).
    # Under xdist each worker collects every test; the second waits on the first's lock.
    if any("locked_wheels" in getattr(item, "fixturenames", ()) for item in session.items):
        from tests.wheelhouse import prefetch

        session.config.stash[_PREFETCH] = prefetch()


def pytest_unconfigure(config: pytest.Config) -> None:
    # Not cut off half-way by the interpreter's exit (a half-written download would
    # only be redone, but its pip processes would run on unowned).
    thread = config.stash.get(_PREFETCH, None)
    if thread is not None:
        thread.join()


_PREFETCH = pytest.StashKey[threading.Thread]()


@pytest.fixture(scope="session")
def locked_wheels() -> Path:
    """The wheels of the project's committed locks (locks/*.txt), downloaded from PyPI
    once per checkout into .build/test-wheels and shared by every process: pass them
    to a build as tests.wheelhouse.offline_args(locked_wheels)."""
    from tests.wheelhouse import CACHE, LOCKS, lock_wheels  # only for the tests using it

    return lock_wheels(CACHE, list(LOCKS))
