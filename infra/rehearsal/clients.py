"""What the engine and its handler modules share: the emulator's boto3 clients and the
handler signatures. Both sides import this module; neither imports the other."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from localcloud.emulator import EMULATOR_ENV

# A resource's inputs as Pulumi sends them (camelCase keys, secrets unwrapped).
Inputs = dict[str, Any]
# What a handler returns: the physical id and the outputs the provider would report.
IdAndOutputs = tuple[str, dict[str, Any]]
# A handler creates one resource from its logical name and inputs.
Handler = Callable[["EmulatorClients", str, Inputs], IdAndOutputs]
# An invoke answers one provider function call.
Invoke = Callable[["EmulatorClients", dict[str, Any]], dict[str, Any]]


def autoname(name: str) -> str:
    # Pulumi's auto-naming: the logical name plus a random suffix.
    return f"{name}-{secrets.token_hex(4)[:7]}"


@dataclass
class EmulatorClients:
    """boto3 clients for the emulator, plus what the handlers learn along the way.

    endpoint_url=None is only for in-process moto (`mock_aws`) in unit tests; the
    rehearsal always passes the moto_server URL, so nothing here can reach AWS.
    """

    endpoint_url: str | None
    region: str = "us-east-1"
    # Bucket policies validated but not yet applied (see resources_s3.bucket_policy).
    deferred_policies: dict[str, str] = field(default_factory=dict)
    # boto3 clients are untyped (no stubs installed): Any is botocore's, not ours.
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _account_id: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)

    def client(self, service: str) -> Any:
        # boto3's session creation is not thread-safe, and Pulumi calls the mocks
        # from a thread pool: create each client once, under a lock.
        with self._lock:
            if service not in self._clients:
                if self._session is None:
                    # One session for every client: each new one reloads botocore's
                    # endpoint data (~0.1 s a client, a tenth of the deploy step).
                    self._session = boto3.session.Session(
                        # Dummy credentials, never the user's: the emulator accepts any.
                        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=EMULATOR_ENV["AWS_SESSION_TOKEN"],
                        region_name=self.region,
                    )
                self._clients[service] = self._session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}),
                )
            return self._clients[service]

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = str(self.client("sts").get_caller_identity()["Account"])
        return self._account_id

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"
