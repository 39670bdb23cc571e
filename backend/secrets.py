"""The market-data API key, read from Secrets Manager by ARN and cached per container.

Only the ARN is in the environment. The value is wrapped in `Secret`, whose repr and
str hide it, so it cannot end up in a log line or a response by accident.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class SecretError(RuntimeError):
    """The secret exists but could not be read (access denied, KMS, throttling...)."""


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


class SecretReader:
    """`get()` calls GetSecretValue once per container (per ARN) once a value is found,
    and returns None while the secret has no value yet (a new secret with no AWSCURRENT
    version). "No value" is not cached: setting the key needs no new container."""

    def __init__(self, *, client: Callable[[], Any], arn: str):
        self._client = client  # a factory, so no client is made unless the key is needed
        self._arn = arn
        self._lock = threading.Lock()
        self._secret: Secret | None = None

    @property
    def arn(self) -> str:
        return self._arn

    def get(self) -> Secret | None:
        with self._lock:
            if self._secret is None:
                self._secret = self._read()
            return self._secret

    def _read(self) -> Secret | None:
        from botocore.exceptions import ClientError

        try:
            response = self._client().get_secret_value(SecretId=self._arn)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return None
            # The error text names the ARN and the cause, never the value.
            raise SecretError(f"cannot read secret {self._arn}: {code}") from None
        value = response.get("SecretString")
        if not value:  # a binary secret, or an empty string: neither is an API key
            return None
        return Secret(value)
