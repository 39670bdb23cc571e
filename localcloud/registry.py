"""What the front learns from the Lambda control-plane calls that pass through it.

moto keeps a function's configuration and its CodeSha256, but not what AWS would run:
it ignores `S3ObjectVersion` (it reads whatever object is current) and drops
`LoggingConfig`. So the front reads the requests as it forwards them, unchanged, and
remembers:

- for each CodeSha256 moto answers with, where that code came from: the S3 bucket,
  key and pinned object version, or the ZipFile bytes themselves (kept on disk under
  their sha256);
- for each layer version ARN, the same;
- for each function version, its LoggingConfig (published versions keep the one
  $LATEST had when they were published, as on AWS).

The runner then fetches the code by that pinned version and checks its sha256
against the version's CodeSha256, so code that is not what the function declares
never runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FUNCTIONS = re.compile(r"^/2015-03-31/functions/?$")
_FUNCTION_PART = re.compile(
    r"^/2015-03-31/functions/(?P<fn>[^/]+)/(?P<part>code|configuration|versions)/?$"
)
_LAYER_VERSIONS = re.compile(r"^/2018-10-31/layers/(?P<layer>[^/]+)/versions/?$")


@dataclass(frozen=True)
class S3Code:
    bucket: str
    key: str
    version_id: str | None  # None: the current object (no pin was given)

    def describe(self) -> str:
        pin = f" version {self.version_id}" if self.version_id else " (current version)"
        return f"s3://{self.bucket}/{self.key}{pin}"


@dataclass(frozen=True)
class ZipCode:
    path: Path

    def describe(self) -> str:
        return f"the ZipFile sent with the request (kept at {self.path})"


CodeSource = S3Code | ZipCode


@dataclass(frozen=True)
class LoggingConfig:
    log_format: str = "Text"  # Text or JSON
    log_group: str | None = None  # None: /aws/lambda/<function>
    application_level: str | None = None  # JSON only: TRACE..FATAL
    system_level: str | None = None  # JSON only: DEBUG, INFO, WARN


@dataclass(frozen=True)
class LayerCode:
    source: CodeSource
    sha256_b64: str | None  # what moto answered with, when it said


def parse_logging_config(raw: Any) -> LoggingConfig | None:
    if not isinstance(raw, dict):
        return None
    return LoggingConfig(
        log_format=str(raw.get("LogFormat") or "Text"),
        log_group=raw.get("LogGroup") or None,
        application_level=raw.get("ApplicationLogLevel") or None,
        system_level=raw.get("SystemLogLevel") or None,
    )


class CodeRegistry:
    """Thread-safe: the front's request threads record, the runners read."""

    def __init__(self, zip_dir: Path) -> None:
        self._zip_dir = zip_dir
        self._lock = threading.Lock()
        self._code: dict[str, list[CodeSource]] = {}
        self._layers: dict[str, LayerCode] = {}
        self._logging: dict[tuple[str, str], LoggingConfig] = {}

    # --- reading -------------------------------------------------------------------

    def code_sources(self, code_sha256_b64: str) -> list[CodeSource]:
        with self._lock:
            return list(self._code.get(code_sha256_b64, ()))

    def layer(self, layer_version_arn: str) -> LayerCode | None:
        with self._lock:
            return self._layers.get(layer_version_arn)

    def logging_config(self, function: str, version: str) -> LoggingConfig:
        with self._lock:
            found = self._logging.get((function, version)) or self._logging.get(
                (function, "$LATEST")
            )
        return found or LoggingConfig()

    # --- recording (after moto accepted the request) --------------------------------

    def observe(self, method: str, path: str, request: bytes, response: bytes) -> None:
        """Record what a successful control-plane call tells; ignore everything else."""
        route = path.split("?", 1)[0]
        if method == "POST" and _FUNCTIONS.match(route):
            self._on_function(_json(request), _json(response), code_key=None)
        elif (match := _FUNCTION_PART.match(route)) is not None:
            part = match["part"]
            if method == "PUT" and part == "code":
                self._on_function(_json(request), _json(response), code_key="flat")
            elif method == "PUT" and part == "configuration":
                self._on_configuration(_json(request), _json(response))
            elif method == "POST" and part == "versions":
                self._on_publish(_json(response))
        elif method == "POST" and _LAYER_VERSIONS.match(route):
            self._on_layer(_json(request), _json(response))

    def _source(self, spec: dict[str, Any]) -> CodeSource | None:
        if spec.get("S3Bucket") and spec.get("S3Key"):
            return S3Code(str(spec["S3Bucket"]), str(spec["S3Key"]), spec.get("S3ObjectVersion"))
        if spec.get("ZipFile"):
            try:
                data = base64.b64decode(spec["ZipFile"])
            except (binascii.Error, TypeError, ValueError):
                return None
            return ZipCode(self._keep_zip(data))
        return None

    def _keep_zip(self, data: bytes) -> Path:
        path = self._zip_dir / f"{hashlib.sha256(data).hexdigest()}.zip"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return path

    def _add_code(self, sha: str, source: CodeSource) -> None:
        with self._lock:
            known = self._code.setdefault(sha, [])
            if source not in known:
                known.append(source)

    def _on_function(self, req: dict[str, Any], resp: dict[str, Any], code_key: str | None) -> None:
        # CreateFunction nests the location under Code; UpdateFunctionCode sends it flat.
        spec = req if code_key == "flat" else req.get("Code") or {}
        source = self._source(spec) if isinstance(spec, dict) else None
        sha = resp.get("CodeSha256")
        if source is not None and isinstance(sha, str) and sha:
            self._add_code(sha, source)
        name, version = resp.get("FunctionName"), resp.get("Version")
        if code_key is None and isinstance(name, str):
            config = parse_logging_config(req.get("LoggingConfig")) or LoggingConfig()
            with self._lock:
                self._logging[(name, "$LATEST")] = config
        if isinstance(name, str) and isinstance(version, str) and version != "$LATEST":
            self._snapshot(name, version)

    def _on_configuration(self, req: dict[str, Any], resp: dict[str, Any]) -> None:
        name = resp.get("FunctionName")
        config = parse_logging_config(req.get("LoggingConfig"))
        if isinstance(name, str) and config is not None:
            with self._lock:
                self._logging[(name, "$LATEST")] = config

    def _on_publish(self, resp: dict[str, Any]) -> None:
        name, version = resp.get("FunctionName"), resp.get("Version")
        if isinstance(name, str) and isinstance(version, str):
            self._snapshot(name, version)

    def _snapshot(self, name: str, version: str) -> None:
        with self._lock:
            latest = self._logging.get((name, "$LATEST"))
            if latest is not None:
                self._logging.setdefault((name, version), latest)

    def _on_layer(self, req: dict[str, Any], resp: dict[str, Any]) -> None:
        content = req.get("Content")
        source = self._source(content) if isinstance(content, dict) else None
        arn = resp.get("LayerVersionArn")
        if source is None or not isinstance(arn, str):
            return
        sha = (resp.get("Content") or {}).get("CodeSha256")
        with self._lock:
            self._layers[arn] = LayerCode(source, sha if isinstance(sha, str) and sha else None)


def _json(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
