"""Which code and configuration an invocation runs, read from the emulator the way
Lambda resolves them: the qualifier (alias, version number, $LATEST) picks a version;
an alias with a routing config picks between its two versions by weight; the version's
configuration (handler, runtime, timeout, memory, environment, layers, CodeSha256)
is the one moto recorded for it, plus what moto drops (LoggingConfig), from the
front's registry."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from localcloud.invoke_api import LambdaApiError, not_found, service_error
from localcloud.registry import CodeRegistry, LoggingConfig


@dataclass(frozen=True)
class FunctionVersion:
    name: str
    arn: str  # unqualified
    version: str  # "$LATEST" or "1", "2", ...
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    variables: tuple[tuple[str, str], ...]  # the function's environment, sorted
    layer_arns: tuple[str, ...]
    code_sha256: str  # base64, as Lambda reports it
    architecture: str
    logging: LoggingConfig
    reserved_concurrency: int | None  # None: unreserved

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    @property
    def log_group(self) -> str:
        return self.logging.log_group or f"/aws/lambda/{self.name}"

    def environment_key(self) -> str:
        """Environments are shared only by invocations of the same code and configuration."""
        doc = json.dumps(
            [self.arn, self.version, self.handler, self.runtime, self.timeout_s,
             self.memory_mb, self.variables, self.layer_arns, self.code_sha256,
             self.logging.log_format, self.logging.application_level],
        )  # fmt: skip
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _call(method: Any, what: str, **params: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = method(**params)
    except Exception as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            raise not_found(what) from None
        raise service_error(f"the emulator failed to answer for {what}: {exc}") from None
    return result


def pick_version(alias: dict[str, Any], rng: random.Random) -> str:
    """The alias's version, or its additional version with the configured weight."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    roll = rng.random()
    for version, weight in weights.items():
        if roll < float(weight):
            return str(version)
        roll -= float(weight)
    return str(alias["FunctionVersion"])


def resolve(
    lam: Any, registry: CodeRegistry, name: str, qualifier: str | None, rng: random.Random
) -> FunctionVersion:
    """The function version an invocation of name[:qualifier] runs (LambdaApiError if none)."""
    base = _call(lam.get_function, name, FunctionName=name)["Configuration"]
    arn = str(base["FunctionArn"])
    unqualified = arn if arn.count(":") == 6 else arn.rsplit(":", 1)[0]
    version = qualifier or "$LATEST"
    if version != "$LATEST" and not version.isdigit():
        alias = _call(lam.get_alias, f"{unqualified}:{version}", FunctionName=name, Name=version)
        version = pick_version(alias, rng)
    config = (
        base
        if version == "$LATEST"
        else _call(lam.get_function, f"{unqualified}:{version}", FunctionName=name,
                   Qualifier=version)["Configuration"]
    )  # fmt: skip
    if config.get("PackageType", "Zip") != "Zip":
        raise LambdaApiError(
            400,
            "InvalidParameterValueException",
            "local cloud: only Zip functions run here (container images do not)",
        )
    concurrency = _call(lam.get_function_concurrency, name, FunctionName=name)
    reserved = concurrency.get("ReservedConcurrentExecutions")
    variables = (config.get("Environment") or {}).get("Variables") or {}
    return FunctionVersion(
        name=str(config["FunctionName"]),
        arn=unqualified,
        version=str(config.get("Version") or version),
        handler=str(config.get("Handler") or ""),
        runtime=str(config.get("Runtime") or ""),
        timeout_s=int(config.get("Timeout") or 3),
        memory_mb=int(config.get("MemorySize") or 128),
        variables=tuple(sorted((str(k), str(v)) for k, v in variables.items())),
        layer_arns=tuple(str(layer["Arn"]) for layer in config.get("Layers") or ()),
        code_sha256=str(config.get("CodeSha256") or ""),
        architecture=str((config.get("Architectures") or ["x86_64"])[0]),
        logging=registry.logging_config(str(config["FunctionName"]), str(config.get("Version"))),
        reserved_concurrency=None if reserved is None else int(reserved),
    )
