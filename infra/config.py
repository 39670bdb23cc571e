"""Stack configuration: every key, its default and its rule, validated in one place.

`load_config()` is the only code that reads `pulumi.Config`. It hands the raw
values to `parse_config()`, a pure function (no Pulumi engine needed) that either
returns a frozen `StackConfig` or raises one `ConfigError` listing every bad key
with the value given and what is allowed. It runs before any resource exists, so
a bad value fails the preview instead of half an update.

`load_stack_file()` validates a stack's YAML the same way without the CLI (for
`python -m infra.deployer_policy`, the rehearsal and the benchmarks), through
infra/stackfile.py, the one reader of stack files.

`ConfigError` subclasses `pulumi.RunError`: the Python language host prints a
RunError's message alone, without the traceback a user cannot act on.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pulumi

# The runtime's own ticker rule, so a symbol the config accepts never fails at runtime.
from backend.models import TICKER_RE
from backend.settings import BUCKET_RE, ENVIRONMENT_RE, LOG_LEVELS, PROVIDERS
from infra import ci_policies as cp
from infra.names import PROJECT, Names, default_lambda_s3_key
from infra.stackfile import StackFile, StackFileError, read_stack_file

NAMESPACE = PROJECT


class ConfigError(pulumi.RunError):
    """One or more config values are invalid; the message names each key."""


# Lambda's Python runtimes that are still supported (Lambda.2) AND that the packager
# can target (lambda_pkg.limits.RUNTIME_GLIBC). python3.9 and 3.10 are deprecated.
SUPPORTED_RUNTIMES = ("python3.11", "python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")
# The only values CloudWatch Logs accepts for RetentionInDays. 0 ("never expire")
# is left out on purpose: unbounded log storage is the thing CloudWatch.16 flags.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
DEFAULT_BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"
DEFAULT_SYMBOLS = ("SPY", "QQQ", "AAPL")
# A schedule's symbol list; the runtime accepts up to backend.models.MAX_SYMBOLS.
MAX_SYMBOLS = 100

_BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_KEY_RE = re.compile(r"^lambda/(?:[A-Za-z0-9._-]+/)*[A-Za-z0-9._-]+\.zip$")
_RATE_RE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON_RE = re.compile(r"^cron\(([^()]+)\)$")
_KMS_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(?:mrk-)?[0-9a-f-]{32,36}$")
_SNS_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_TAG_KEY_RE = re.compile(r"^[\w .:/=+@-]{1,128}$")
_TAG_VALUE_RE = re.compile(r"^[\w .:/=+@-]{0,256}$")


@dataclass(frozen=True)
class Key:
    """One config key: its Pulumi.yaml type, its default (None: computed or unset)."""

    name: str
    # Pulumi.yaml type: string | integer | boolean | array; "object" is declared there
    # without a type, because the CLI accepts no object type in a project file.
    type: str
    default: Any
    description: str


# Every key of the `cloud-trading-bot` namespace. Pulumi.yaml declares the same set
# with the same defaults; a test keeps the two in step.
KEYS: tuple[Key, ...] = (
    # "" for these two means "computed": the stack name, and lambda/<env>/lambda_deployment.zip.
    Key("environment", "string", "", "Environment name, used in every resource name"),
    Key("bucketName", "string", DEFAULT_BUCKET, "The one deployment bucket"),
    Key("bucketOwner", "boolean", False, "This stack creates and configures the bucket"),
    Key("lambdaS3Key", "string", "", "Package key, under lambda/, ending in .zip"),
    Key("runtime", "string", "python3.12", "Lambda Python runtime"),
    Key("architecture", "string", "x86_64", "x86_64 or arm64"),
    Key("memorySize", "integer", 512, "MB, 128-10240"),
    Key("timeout", "integer", 300, "Seconds, 1-900"),
    Key("schedule", "string", "rate(15 minutes)", "EventBridge rate()/cron(), empty: none"),
    Key("symbols", "array", list(DEFAULT_SYMBOLS), "Tickers to fetch"),
    Key("logRetentionDays", "integer", 14, "CloudWatch log retention"),
    Key("reservedConcurrency", "integer", 1, "-1 (unreserved) or >= 1"),
    Key("dependencyLayer", "boolean", False, "Dependencies in a separate layer"),
    Key("marketDataApiKey", "string", "", "Provider API key; set with --secret"),
    Key("marketDataProvider", "string", "yfinance", "yfinance or fixture"),
    Key("logLevel", "string", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Key("kmsKeyArn", "string", "", "KMS key for SSE-KMS; empty: AES256"),
    Key("lambdaNoncurrentVersions", "integer", 5, "Noncurrent package versions kept"),
    Key("lambdaNoncurrentDays", "integer", 30, "Days before older ones expire"),
    Key("deletionProtection", "boolean", False, "Deletion protection on the table"),
    Key("maxRetryAttempts", "integer", 1, "Async retries, 0-2"),
    Key("maxEventAgeSeconds", "integer", 900, "Async event age, 60-21600"),
    Key("alarmTopicArn", "string", "", "SNS topic for alarm actions; empty: none"),
    Key("tags", "object", {}, "Extra tags on every resource"),
    Key("deploymentsEnabled", "boolean", False, "Pulumi Deployments settings"),
    Key("ciRoleEnabled", "boolean", False, "GitHub OIDC CI deploy role"),
    Key("githubRepository", "string", "", "owner/repo, required by the two above"),
    Key("githubBranch", "string", "main", "Branch CI deploys from"),
    Key("githubEnvironment", "string", "", "GitHub environment that gates deploys"),
    Key("githubOidcProviderArn", "string", "", "Adopt this GitHub OIDC provider"),
    Key("pulumiOidcProviderArn", "string", "", "Adopt this Pulumi OIDC provider"),
    Key("deployRoleArn", "string", "", "Role Pulumi Deployments assumes without ciRole"),
    Key("deploymentsPushToDeploy", "boolean", True, "Pulumi Deployments on push"),
    Key("deploymentsPreviewPullRequests", "boolean", True, "Pulumi Deployments PR previews"),
)
KEY_NAMES = frozenset(k.name for k in KEYS)
DEFAULTS = {k.name: k.default for k in KEYS}
SECRET_KEYS = frozenset({"marketDataApiKey"})


@dataclass(frozen=True)
class StackConfig:
    environment: str
    bucket_name: str
    bucket_owner: bool
    lambda_s3_key: str
    runtime: str
    architecture: str
    memory_size: int
    timeout: int
    schedule: str | None
    symbols: tuple[str, ...]
    log_retention_days: int
    reserved_concurrency: int
    dependency_layer: bool
    market_data_provider: str
    log_level: str
    kms_key_arn: str | None
    lambda_noncurrent_versions: int
    lambda_noncurrent_days: int
    deletion_protection: bool
    max_retry_attempts: int
    max_event_age_seconds: int
    alarm_topic_arn: str | None
    tags: Mapping[str, str]
    deployments_enabled: bool
    ci_role_enabled: bool
    github_repository: str | None
    github_branch: str
    github_environment: str | None
    github_oidc_provider_arn: str | None
    pulumi_oidc_provider_arn: str | None
    deploy_role_arn: str | None
    deployments_push_to_deploy: bool
    deployments_preview_pull_requests: bool
    # A pulumi.Output marked secret (or None). Never a plain value in repr or logs.
    market_data_api_key: Any = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> Names:
        return Names.for_env(self.environment)

    @property
    def lambda_key_prefix(self) -> str:
        """The package key's folder: what the deployer may write (`lambda/dev/`)."""
        return self.lambda_s3_key.rsplit("/", 1)[0] + "/"

    @property
    def owner_only_warnings(self) -> list[str]:
        """Settings this stack asks for that only the bucket's owner applies.

        Lifecycle rules are bucket-wide, so an adopting stack's noncurrent-version
        settings change nothing: say so at preview instead of ignoring them silently."""
        if self.bucket_owner:
            return []
        ignored = [
            f"{key} = {value}"
            for key, value in (
                ("lambdaNoncurrentVersions", self.lambda_noncurrent_versions),
                ("lambdaNoncurrentDays", self.lambda_noncurrent_days),
            )
            if value != DEFAULTS[key]
        ]
        if not ignored:
            return []
        return [
            f"{NAMESPACE}:{', '.join(ignored)} has no effect: this stack adopts the bucket "
            f"{self.bucket_name!r} (bucketOwner = false), and lifecycle rules are bucket-wide, "
            "set by the owner stack. Set them in the owner's stack file, or remove them here"
        ]

    @property
    def all_tags(self) -> dict[str, str]:
        return {
            **self.tags,
            "project": PROJECT,
            "environment": self.environment,
            "managed-by": "pulumi",
        }


class _Invalid(Exception):
    """A single key's value is invalid (collected into one ConfigError)."""


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Invalid("true or false")


def _int_in(lo: int, hi: int | None) -> Callable[[Any], int]:
    allowed = f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise _Invalid(allowed)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            raise _Invalid(allowed)
        return value

    return parse


def _one_of(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value not in choices:
            raise _Invalid("one of " + ", ".join(str(c) for c in choices))
        return value

    return parse


def _environment(value: Any) -> str:
    if not isinstance(value, str) or not ENVIRONMENT_RE.match(value):
        raise _Invalid(
            "2-16 characters: a lowercase letter, then lowercase letters, digits or '-' "
            "(it defaults to the stack name; set it with `pulumi config set environment NAME`)"
        )
    return value


def _bucket_name(value: Any) -> str:
    allowed = (
        "a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-', "
        "starting and ending with a letter or digit"
    )
    if not isinstance(value, str) or not BUCKET_RE.match(value):
        raise _Invalid(allowed)
    if (
        ".." in value
        or ".-" in value
        or "-." in value
        or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value)
        or value.startswith(_BUCKET_BAD_PREFIXES)
        or value.endswith(_BUCKET_BAD_SUFFIXES)
    ):
        raise _Invalid(allowed + " (no '..', not an IP address, no reserved prefix/suffix)")
    return value


def _lambda_key(value: Any) -> str:
    if not isinstance(value, str) or not _KEY_RE.match(value) or len(value) > 1024:
        raise _Invalid(
            "an S3 key under lambda/ ending in .zip (letters, digits, '.', '_', '-'), "
            "e.g. lambda/dev/lambda_deployment.zip"
        )
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise _Invalid("an S3 key without '.' or '..' path segments")
    return value


def _schedule(value: Any) -> str | None:
    allowed = (
        "rate(N minute[s]|hour[s]|day[s]) (singular when N is 1), "
        "cron(min hour day-of-month month day-of-week year), or empty for no schedule"
    )
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid(allowed)
    rate = _RATE_RE.match(value)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2)
        if n < 1 or (n == 1) != (not unit.endswith("s")):
            raise _Invalid(allowed)
        return value
    cron = _CRON_RE.match(value)
    if cron and len(cron.group(1).split()) == 6:
        return value
    raise _Invalid(allowed)


def _symbols(value: Any) -> tuple[str, ...]:
    allowed = f'a non-empty list of up to {MAX_SYMBOLS} distinct tickers, e.g. ["SPY","QQQ"]'
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError:
            raise _Invalid(allowed) from None
    if not isinstance(value, list | tuple) or not value or len(value) > MAX_SYMBOLS:
        raise _Invalid(allowed)
    symbols = tuple(s.strip() if isinstance(s, str) else s for s in value)
    bad = [s for s in symbols if not isinstance(s, str) or not TICKER_RE.match(s.upper())]
    if bad:
        raise _Invalid(f"{allowed}; not a ticker: {bad[0]!r}")
    if len(set(symbols)) != len(symbols):
        raise _Invalid(f"{allowed}; duplicates given")
    return symbols


def _reserved(value: Any) -> int:
    number = _int_in(-1, None)(value)
    if number == 0:
        # 0 reserved concurrency throttles every invocation: the bot would never run.
        raise _Invalid("-1 (unreserved) or an integer >= 1 (0 would disable the function)")
    return number


def _optional(pattern: re.Pattern[str], allowed: str) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not pattern.match(value):
            raise _Invalid(allowed)
        return value

    return parse


def _tags(value: Any) -> Mapping[str, str]:
    allowed = "a map of tag names (1-128 chars) to values (0-256 chars), no 'aws:' prefix"
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise _Invalid(allowed) from None
    if not isinstance(value, dict):
        raise _Invalid(allowed)
    for k, v in value.items():
        if (
            not isinstance(k, str)
            or not isinstance(v, str)
            or not _TAG_KEY_RE.match(k)
            or not _TAG_VALUE_RE.match(v)
            or k.lower().startswith("aws:")
        ):
            raise _Invalid(f"{allowed}; bad entry {k!r}: {v!r}")
    return MappingProxyType(dict(value))


def _branch(value: Any) -> str:
    # The short name: the trust policies and Pulumi Deployments add refs/heads/ themselves.
    if not isinstance(value, str) or not cp.BRANCH_RE.match(value) or value.startswith("refs/"):
        raise _Invalid("a short git branch name, e.g. main (not refs/heads/main)")
    return value


def _secret(value: Any) -> Any:
    # Only presence matters here; the value stays inside a secret Output.
    return None if value is None or value == "" else value


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "environment": _environment,
    "bucketName": _bucket_name,
    "bucketOwner": _as_bool,
    "lambdaS3Key": _lambda_key,
    "runtime": _one_of(SUPPORTED_RUNTIMES),
    "architecture": _one_of(ARCHITECTURES),
    "memorySize": _int_in(128, 10240),
    "timeout": _int_in(1, 900),
    "schedule": _schedule,
    "symbols": _symbols,
    "logRetentionDays": lambda v: _one_of(LOG_RETENTION_DAYS)(_int_in(1, 3653)(v)),
    "reservedConcurrency": _reserved,
    "dependencyLayer": _as_bool,
    "marketDataApiKey": _secret,
    "marketDataProvider": _one_of(PROVIDERS),
    "logLevel": _one_of(LOG_LEVELS),
    "kmsKeyArn": _optional(_KMS_RE, "empty, or a KMS key ARN arn:aws:kms:REGION:ACCOUNT:key/ID"),
    # S3 lifecycle accepts NewerNoncurrentVersions from 1 to 100.
    "lambdaNoncurrentVersions": _int_in(1, 100),
    "lambdaNoncurrentDays": _int_in(1, 3650),
    "deletionProtection": _as_bool,
    "maxRetryAttempts": _int_in(0, 2),
    "maxEventAgeSeconds": _int_in(60, 21600),
    "alarmTopicArn": _optional(
        _SNS_RE, "empty, or an SNS topic ARN arn:aws:sns:REGION:ACCOUNT:NAME"
    ),
    "tags": _tags,
    "deploymentsEnabled": _as_bool,
    "ciRoleEnabled": _as_bool,
    "githubRepository": _optional(cp.REPOSITORY_RE, "empty, or owner/repo"),
    "githubBranch": _branch,
    "githubEnvironment": _optional(cp.ENVIRONMENT_RE, "empty, or a GitHub environment name"),
    "githubOidcProviderArn": _optional(
        cp.GITHUB_OIDC_PROVIDER_ARN_RE,
        "empty, or arn:aws:iam::ACCOUNT:oidc-provider/token.actions.githubusercontent.com",
    ),
    "pulumiOidcProviderArn": _optional(
        cp.PULUMI_OIDC_PROVIDER_ARN_RE,
        "empty, or arn:aws:iam::ACCOUNT:oidc-provider/api.pulumi.com/oidc",
    ),
    "deployRoleArn": _optional(cp.ROLE_ARN_RE, "empty, or an IAM role ARN"),
    "deploymentsPushToDeploy": _as_bool,
    "deploymentsPreviewPullRequests": _as_bool,
}
assert set(_PARSERS) == KEY_NAMES  # noqa: S101 - a key without a rule is a programming error


def _field_name(key: str) -> str:
    """StackConfig's field for a config key: its snake_case (lambdaS3Key: lambda_s3_key)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _describe(key: str, value: Any) -> str:
    shown = "<secret>" if key in SECRET_KEYS else repr(value)
    return f"{NAMESPACE}:{key} = {shown}"


def parse_config(
    raw: Mapping[str, Any],
    *,
    stack: str,
    secret_keys: frozenset[str] | set[str] = frozenset(),
) -> StackConfig:
    """Validate raw values (strings as Pulumi passes them, or typed YAML values).

    `raw` maps short key names (no namespace) to values; a missing key or None takes
    its default. `secret_keys` are the short names Pulumi holds encrypted.
    """
    errors: list[str] = []
    unknown = sorted(set(raw) - KEY_NAMES)
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(KEY_NAMES), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        errors.append(f"{NAMESPACE}:{key}: unknown config key{hint}")

    values: dict[str, Any] = {}
    for key in (k.name for k in KEYS):  # in declaration order: environment first
        given = raw.get(key)
        value = given if given is not None else DEFAULTS[key]
        if key == "environment" and value == "":
            value = stack
        if key == "lambdaS3Key" and value == "":
            value = default_lambda_s3_key(values.get("environment") or stack)
        try:
            values[key] = _PARSERS[key](value)
        except _Invalid as exc:
            errors.append(f"{_describe(key, value)}: must be {exc}")

    if values.get("marketDataApiKey") is not None and "marketDataApiKey" not in secret_keys:
        errors.append(
            f"{NAMESPACE}:marketDataApiKey is stored in plain text: remove it and set it with "
            "`pulumi config set --secret marketDataApiKey VALUE` so it is encrypted in state"
        )
    wants_github = values.get("deploymentsEnabled") or values.get("ciRoleEnabled")
    if wants_github and not values.get("githubRepository") and "githubRepository" in values:
        errors.append(
            f"{_describe('githubRepository', raw.get('githubRepository', ''))}: must be "
            "owner/repo when deploymentsEnabled or ciRoleEnabled is true"
        )
    if (
        values.get("deploymentsEnabled")
        and values.get("ciRoleEnabled") is False
        and "deployRoleArn" in values
        and not values["deployRoleArn"]
    ):
        errors.append(
            f"{_describe('deployRoleArn', raw.get('deployRoleArn', ''))}: must be the ARN of "
            "the role Pulumi Deployments assumes when deploymentsEnabled is true and "
            "ciRoleEnabled is false (or set ciRoleEnabled: true to create one)"
        )
    if (
        values.get("deploymentsEnabled")
        and values.get("deploymentsPushToDeploy") is False
        and values.get("deploymentsPreviewPullRequests") is False
    ):
        errors.append(
            f"{NAMESPACE}:deploymentsEnabled = True: with deploymentsPushToDeploy and "
            "deploymentsPreviewPullRequests both false, Pulumi Deployments would never run; "
            "set one of them to true, or deploymentsEnabled to false"
        )
    if errors:
        raise ConfigError(
            f"invalid stack configuration for stack {stack!r}:\n  " + "\n  ".join(errors)
        )

    return StackConfig(**{_field_name(key): values[key] for key in KEY_NAMES})


def _all_runtime_keys() -> set[str]:
    # Every config key the engine handed us (set_all_config, PULUMI_CONFIG), so a
    # typo such as `memorysize` is reported instead of silently ignored.
    keys = set(pulumi.runtime.config.CONFIG.get())
    keys |= set(pulumi.runtime.get_config_env())
    return keys


def check_pulumi_names(cfg: StackConfig, *, organization: str, project: str, stack: str) -> None:
    """Pulumi Deployments' settings and OIDC subjects name the Pulumi organization,
    project and stack: check them with the rest of the config, before any resource."""
    if not cfg.deployments_enabled:
        return
    for what, value in (("organization", organization), ("project", project), ("stack", stack)):
        try:
            cp.check_pulumi_name(value, what)
        except cp.PolicyInputError as exc:
            raise ConfigError(f"{NAMESPACE}:deploymentsEnabled = True: Pulumi {exc}") from None


def load_config() -> StackConfig:
    """Read this stack's config from the Pulumi engine and validate it."""
    prefix = f"{NAMESPACE}:"
    present = {k[len(prefix) :] for k in _all_runtime_keys() if k.startswith(prefix)}
    raw = {key: pulumi.runtime.get_config(prefix + key) for key in present | KEY_NAMES}
    secret_keys = {k for k in present if pulumi.runtime.is_config_secret(prefix + k)}
    stack = pulumi.get_stack()
    cfg = parse_config(raw, stack=stack, secret_keys=secret_keys)
    check_pulumi_names(
        cfg, organization=pulumi.get_organization(), project=pulumi.get_project(), stack=stack
    )
    for message in cfg.owner_only_warnings:
        pulumi.log.warn(message)
    if cfg.market_data_api_key is None:
        return cfg
    # Hand the key on as a secret Output only, so Pulumi encrypts it in state.
    return replace(cfg, market_data_api_key=pulumi.Output.secret(raw["marketDataApiKey"]))


def load_stack_file(stack: str, project_dir: Path) -> tuple[StackConfig, StackFile]:
    """Validate `Pulumi.<stack>.yaml` (over Pulumi.yaml's defaults) as the program would,
    without the CLI. Encrypted values count as set; they are never decrypted here."""
    try:
        stack_file = read_stack_file(project_dir, stack)
    except StackFileError as exc:
        raise ConfigError(str(exc)) from None
    if stack_file.project != NAMESPACE:
        raise ConfigError(
            f"{project_dir / 'Pulumi.yaml'}: project {stack_file.project!r}, but the program's "
            f"config namespace is {NAMESPACE!r}"
        )
    raw: dict[str, Any] = stack_file.project_values()
    secure = stack_file.project_secure_keys()
    raw.update(dict.fromkeys(secure, "<secure>"))
    try:
        cfg = parse_config(raw, stack=stack, secret_keys=secure)
    except ConfigError as exc:
        raise ConfigError(f"{stack_file.path}: {exc}") from None
    return cfg, stack_file
