"""boto3 clients, created lazily (first use, not import) and cached per container.

Importing this module does not import boto3, so importing the handler needs neither
boto3's ~100 ms import nor credentials. The endpoint comes from boto3 itself, which
honours AWS_ENDPOINT_URL (how a rehearsal points the runtime at an emulator).
"""

from __future__ import annotations

import threading
from typing import Any

from backend.secrets import SecretReader


class AwsClients:
    """One client per service, shared by the fetch threads (boto3 clients are
    thread-safe; creating them is not, hence the lock)."""

    def __init__(self, *, max_pool_connections: int = 32):
        self._max_pool_connections = max_pool_connections
        self._clients: dict[str, Any] = {}
        self._session: Any = None
        self._secrets: dict[str, SecretReader] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._create(service)
                self._clients[service] = client
            return client

    def _create(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            # "standard" retries throttling and transient errors with backoff, and
            # is the same in every SDK; "legacy" (the default) retries fewer cases.
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=30,
            # One pooled connection per fetch thread, or threads queue for sockets.
            max_pool_connections=self._max_pool_connections,
        )
        if self._session is None:
            # One session for every client: each new Session reloads botocore's data
            # files, ~25 ms per extra client on a cold start.
            self._session = boto3.session.Session()
        return self._session.client(service, config=config)

    def secret_reader(self, arn: str) -> SecretReader:
        """The reader for `arn`, kept with the clients so its cached value lives as long
        as the container does."""
        with self._lock:
            reader = self._secrets.get(arn)
            if reader is None:
                reader = SecretReader(client=lambda: self.get("secretsmanager"), arn=arn)
                self._secrets[arn] = reader
            return reader
