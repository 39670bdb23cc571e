"""Stack configuration: read and validated in one place.

- `load_config()` is the only code that reads the Pulumi engine's config (the program).
- `read_stack_file()` is the only code that reads `Pulumi.yaml` + `Pulumi.<stack>.yaml`
  without the CLI (infra/config/stackfile.py), as `StackValues`: the strings the CLI would
  hand the program. The rehearsal hands exactly those to the program it runs.
- `parse_config()` (pure: no engine needed) turns raw values into a frozen `StackConfig`
  or raises one `ConfigError` that lists every bad key at once, one line each, naming
  the key, the value given and the rule. `parse_values()` and `load_stack_file()` apply
  it to `StackValues`.

Each key's rule is in infra/config/keys.py (with its building blocks in rules.py,
schedule.py, tags.py and service.py); the rules between keys are here; the trading
keys' meaning is the trading core's (infra/config/trading.py). Validation runs before
any resource exists, so a bad value fails the preview instead of half an update.

`ConfigError` subclasses `pulumi.RunError`: the Python language host prints a
RunError's message alone, without the traceback a user cannot act on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi

from infra import ci_policies as cp
from infra.config import rules, service
from infra.config.errors import ConfigError, StackFileError
from infra.config.keys import (
    ARN_RULES,
    DEFAULT_BUCKET,
    DEFAULT_SYMBOLS,
    DEFAULTS,
    KEY_NAMES,
    KEYS,
    LOG_RETENTION_DAYS,
    MAX_SYMBOLS,
    SECRET_KEYS,
)
from infra.config.stackfile import StackValues, config_string, read_stack_file
from infra.config.trading import TRADING_KEYS, trading_problems
from infra.names import PROJECT, Names, default_lambda_s3_key, layer_prefix

NAMESPACE = PROJECT
# Stands in for a value that is encrypted in the stack file: set, but unreadable here.
ENCRYPTED = "<encrypted>"

__all__ = [
    "DEFAULTS",
    "DEFAULT_BUCKET",
    "DEFAULT_SYMBOLS",
    "KEYS",
    "KEY_NAMES",
    "LOG_RETENTION_DAYS",
    "MAX_SYMBOLS",
    "NAMESPACE",
    "ConfigError",
    "StackConfig",
    "StackFileError",
    "StackValues",
    "check_pulumi_names",
    "config_string",
    "load_config",
    "load_stack_file",
    "parse_config",
    "parse_overrides",
    "parse_values",
    "read_stack_file",
]


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
    # The trading half: the strategy service's settings (docs/CONTRACTS.md section 10).
    strategy_enabled: bool
    strategy: str
    strategy_params: Mapping[str, Any]
    bar_interval: str
    risk_limits: Mapping[str, Any]
    trading_mode: str
    live_trading: bool
    paper_cash: float
    paper_slippage_bps: float
    paper_fee_rate: float
    task_cpu: int
    task_memory: int
    service_base_image: str | None
    service_network: str
    service_subnet_ids: tuple[str, ...]
    # A pulumi.Output marked secret (or None). Never a plain value in repr or logs.
    market_data_api_key: Any = field(default=None, repr=False, compare=False)
    # The same for the broker's keys (JSON {"key_id", "secret_key"}), alpaca modes only.
    broker_credentials: Any = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> Names:
        return Names.for_env(self.environment)

    @property
    def lambda_key_prefix(self) -> str:
        """The package key's folder: what the deployer may write (`lambda/dev/`)."""
        return self.lambda_s3_key.rsplit("/", 1)[0] + "/"

    @property
    def trading_settings(self) -> dict[str, Any]:
        """The trading keys, by stack config key, as parse_trading_config takes them
        (and as the service's TRADING_CONFIG will carry them)."""
        settings: dict[str, Any] = {key: getattr(self, _field_name(key)) for key in TRADING_KEYS}
        settings["strategyParams"] = dict(self.strategy_params)
        settings["riskLimits"] = dict(self.risk_limits)
        return settings

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
    def service_warnings(self) -> list[str]:
        """Service settings that change nothing, said at preview instead of ignored."""
        if self.broker_credentials is None or (
            self.strategy_enabled and self.trading_mode in service.ALPACA_MODES
        ):
            return []
        why = (
            "strategyEnabled is false"
            if not self.strategy_enabled
            else f"tradingMode is {self.trading_mode!r} (the paper broker needs no keys)"
        )
        return [
            f"{NAMESPACE}:brokerCredentials has no effect: {why}, so no broker secret is "
            "created. Remove it, or set tradingMode to alpaca-paper or alpaca-live"
        ]

    @property
    def all_tags(self) -> dict[str, str]:
        # The config cannot set these three keys (infra/config/tags.py): nothing is overwritten.
        return {
            **self.tags,
            "project": PROJECT,
            "environment": self.environment,
            "managed-by": "pulumi",
        }


def _field_name(key: str) -> str:
    """StackConfig's field for a config key: its snake_case (lambdaS3Key: lambda_s3_key)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _shown(value: Any) -> str:
    """A value as an error shows it: on one line, short, and with a look-alike or an
    invisible character escaped (`'d\\u0435v'`, `'dev\\n'`), not printed as it looks."""
    if isinstance(value, str) and len(value) > 60:
        head = ascii(value[:40])
        return f"{head[:-1]}…{head[-1]} ({len(value):,} characters)"
    try:
        shown = ascii(value) if isinstance(value, str) and not value.isascii() else repr(value)
    except ValueError:  # an integer past Python's 4,300-digit limit, even inside a list
        return f"<{type(value).__name__} too large to show>"
    return shown if len(shown) <= 80 else f"{shown[:60]}… ({len(shown):,} characters)"


def _name(key: str) -> str:
    """A key or namespace as an error names it: escaped, and cut short."""
    shown = ascii(key)[1:-1]
    return shown if len(shown) <= 60 else f"{shown[:40]}… ({len(key):,} characters)"


def _describe(key: str, value: Any) -> str:
    shown = "<secret>" if key in SECRET_KEYS else _shown(value)
    return f"{NAMESPACE}:{key} = {shown}"


def _unknown_keys(raw: Mapping[str, Any]) -> list[str]:
    errors = []
    for key in sorted(set(raw) - KEY_NAMES):
        close = difflib.get_close_matches(key, sorted(KEY_NAMES), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        errors.append(f"{NAMESPACE}:{_name(key)}: unknown config key{hint}")
    return errors


def _namespace_typos(namespaces: Iterable[str]) -> list[str]:
    # Keys under `cloud-trading-bots:` or `Cloud-Trading-Bot:` belong to no one: the
    # program would silently use the defaults instead.
    return [
        f"{_name(ns)}: unknown config namespace; did you mean {NAMESPACE}? (its keys are ignored)"
        for ns in sorted(set(namespaces))
        if ns != NAMESPACE and difflib.SequenceMatcher(None, ns.casefold(), NAMESPACE).ratio() > 0.8
    ]


def _region_problems(region: str | None, values: Mapping[str, Any]) -> list[str]:
    """aws:region itself, and every ARN key against it: partition and region."""
    if region is None or region == "":
        return []
    if not isinstance(region, str) or not rules.REGION_RE.fullmatch(region):
        return [f"aws:region = {_shown(region)}: must be an AWS region such as us-east-1"]
    partition = rules.partition_of(region)
    problems = []
    for key, rule in ARN_RULES.items():
        value = values.get(key)
        parsed = rules.split_arn(value) if isinstance(value, str) else None
        if parsed is None:
            continue
        if parsed.partition != partition:
            problems.append(
                f"{_describe(key, value)}: must be in the stack's partition {partition} "
                f"(aws:region {region}), not {parsed.partition}"
            )
        elif rule.regional and parsed.region != region:
            problems.append(
                f"{_describe(key, value)}: must be in the stack's region {region} "
                f"({rule.region_reason}), not {parsed.region}"
            )
    return problems


def _lambda_key_problems(raw: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """The package key lies under lambda/<environment>/, but not in its layers/ folder:
    the deployer policy is scoped to the key's folder, so `lambda/dev.zip` would grant
    all of lambda/, and dev's key under lambda/prod/ would hand dev prod's packages."""
    key, env = values.get("lambdaS3Key"), values.get("environment")
    if key is None or env is None:
        return []
    home = f"lambda/{env}/"
    if not key.startswith(home):
        return [
            f"{_describe('lambdaS3Key', raw.get('lambdaS3Key'))}: must be under {home} "
            f"(this stack's environment is {env!r}; the deployer policy covers the key's "
            "folder and nothing else)"
        ]
    if key.startswith(layer_prefix(env)):
        return [
            f"{_describe('lambdaS3Key', raw.get('lambdaS3Key'))}: must not be under "
            f"{layer_prefix(env)}, which holds the dependency layers"
        ]
    return []


def _ci_problems(raw: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    problems = []
    wants_github = values.get("deploymentsEnabled") or values.get("ciRoleEnabled")
    if wants_github and not values.get("githubRepository") and "githubRepository" in values:
        problems.append(
            f"{_describe('githubRepository', raw.get('githubRepository', ''))}: must be "
            "owner/repo when deploymentsEnabled or ciRoleEnabled is true"
        )
    if (
        values.get("deploymentsEnabled")
        and values.get("ciRoleEnabled") is False
        and "deployRoleArn" in values
        and not values["deployRoleArn"]
    ):
        problems.append(
            f"{_describe('deployRoleArn', raw.get('deployRoleArn', ''))}: must be the ARN of "
            "the role Pulumi Deployments assumes when deploymentsEnabled is true and "
            "ciRoleEnabled is false (or set ciRoleEnabled: true to create one)"
        )
    if (
        values.get("deploymentsEnabled")
        and values.get("deploymentsPushToDeploy") is False
        and values.get("deploymentsPreviewPullRequests") is False
    ):
        problems.append(
            f"{NAMESPACE}:deploymentsEnabled = True: with deploymentsPushToDeploy and "
            "deploymentsPreviewPullRequests both false, Pulumi Deployments would never run; "
            "set one of them to true, or deploymentsEnabled to false"
        )
    return problems


def _service_problems(raw: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    problems = []
    cpu, memory = values.get("taskCpu"), values.get("taskMemory")
    if cpu is not None and memory is not None:
        wrong = service.memory_problem(cpu, memory)
        if wrong:
            problems.append(
                f"{_describe('taskMemory', raw.get('taskMemory', memory))}: must be {wrong}"
            )
    network, subnets = values.get("serviceNetwork"), values.get("serviceSubnetIds")
    if network == "subnets" and subnets == ():
        problems.append(
            f"{_describe('serviceSubnetIds', raw.get('serviceSubnetIds', []))}: must list "
            "the subnets when serviceNetwork is subnets"
        )
    if network not in (None, "subnets") and subnets:
        problems.append(
            f"{_describe('serviceSubnetIds', raw.get('serviceSubnetIds'))}: must be empty "
            f"unless serviceNetwork is subnets (it is {network!r}, so they would be ignored)"
        )
    mode = values.get("tradingMode")
    if network in service.NO_INTERNET and isinstance(mode, str) and mode.startswith("alpaca"):
        problems.append(
            f"{_describe('serviceNetwork', network)}: must reach the internet when "
            f"tradingMode is {mode!r} (the broker's API is on the internet); use private-nat"
        )
    image, runtime = values.get("serviceBaseImage"), values.get("runtime")
    if image and runtime:
        wrong = service.image_python_problem(image, runtime)
        if wrong:
            problems.append(f"{_describe('serviceBaseImage', image)}: must be {wrong}")
    return problems


def _broker_credentials_problems(values: Mapping[str, Any], secret_keys: set[str]) -> list[str]:
    """Plain text, or the wrong shape: one line, never showing the value."""
    value = values.get("brokerCredentials")
    if value is None or value == ENCRYPTED:
        return []
    if "brokerCredentials" not in secret_keys:
        return [
            f"{NAMESPACE}:brokerCredentials is stored in plain text: remove it and set it with "
            '`pulumi config set --secret brokerCredentials \'{"key_id": ..., "secret_key": ...}\'` '
            "so it is encrypted in state"
        ]
    wrong = service.broker_credentials_problem(value)
    return [f"{NAMESPACE}:brokerCredentials = <secret>: must be {wrong}"] if wrong else []


def _trading(values: Mapping[str, Any], environment: Any) -> list[str]:
    """The trading core's problems, with the others: only the keys whose type parsed
    (a broken one is already reported) and the environment the live switch needs."""
    # Plain dicts, as the service's TRADING_CONFIG will carry them (not read-only views).
    raw = {
        key: dict(values[key]) if isinstance(values[key], Mapping) else values[key]
        for key in TRADING_KEYS
        if key in values
    }
    # Even an invalid environment (already reported) is passed: anything but "prod"
    # keeps live trading refused.
    raw["environment"] = values.get("environment") or str(environment)
    return [
        line if line.startswith(f"{NAMESPACE}:") else f"{NAMESPACE}:{line}"
        for line in trading_problems(raw)
    ]


def parse_config(
    raw: Mapping[str, Any],
    *,
    stack: str,
    secret_keys: Iterable[str] = frozenset(),
    encrypted_keys: Iterable[str] = frozenset(),
    region: str | None = None,
    namespaces: Iterable[str] = (),
) -> StackConfig:
    """Validate raw values (strings as Pulumi passes them, or typed YAML values).

    `raw` maps short key names (no namespace) to values; a missing key or None takes
    its default. `secret_keys` are the short names Pulumi holds as secrets;
    `encrypted_keys` those set in the stack file but encrypted (so unreadable here).
    `region` is the stack's aws:region, `namespaces` every config namespace it sets.
    """
    secret_keys, encrypted = set(secret_keys), set(encrypted_keys)
    errors = _unknown_keys(raw) + _namespace_typos(namespaces)
    values: dict[str, Any] = {}
    for key in KEYS:  # in declaration order: environment first
        name = key.name
        if name in encrypted or (name in secret_keys and name not in SECRET_KEYS):
            if name in SECRET_KEYS:
                values[name] = ENCRYPTED
                continue
            errors.append(
                f"{NAMESPACE}:{name} is stored as a secret, but only "
                f"{', '.join(sorted(SECRET_KEYS))} is secret config: set it in plain text "
                f"(`pulumi config set {name} VALUE`), so it can be reviewed and validated"
            )
            continue
        given = raw.get(name)
        value = given if given is not None else key.default
        if name == "environment" and value == "":
            value = stack
        if name == "lambdaS3Key" and value == "":
            if "environment" not in values:
                continue  # no key can be derived; the environment's error says why
            value = default_lambda_s3_key(values["environment"])
        try:
            values[name] = key.parse(value)
        except rules.Invalid as exc:
            hint = ""
            if name == "environment" and given in (None, ""):
                hint = " (it is the stack name; set it with `pulumi config set environment NAME`)"
            errors.append(f"{_describe(name, value)}: must be {exc}{hint}")

    api_key = values.get("marketDataApiKey")
    if api_key is not None and api_key != ENCRYPTED:
        if "marketDataApiKey" not in secret_keys:
            errors.append(
                f"{NAMESPACE}:marketDataApiKey is stored in plain text: remove it and set it "
                "with `pulumi config set --secret marketDataApiKey VALUE` so it is encrypted "
                "in state"
            )
        elif not isinstance(api_key, str) or rules.text_problem(api_key, max_len=4096):
            errors.append(
                f"{NAMESPACE}:marketDataApiKey = <secret>: must be the key alone, without "
                "spaces, line breaks or control characters around or in it (often a newline "
                "from `echo`; set it again with `pulumi config set --secret`)"
            )
    errors += _broker_credentials_problems(values, secret_keys)
    errors += _lambda_key_problems(raw, values)
    errors += _ci_problems(raw, values)
    errors += _region_problems(region, values)
    errors += _service_problems(raw, values)
    errors += _trading(values, raw.get("environment") or stack)
    if errors:
        raise ConfigError(
            f"invalid stack configuration for stack {stack!r}:\n  " + "\n  ".join(errors)
        )
    return StackConfig(**{_field_name(key): values[key] for key in KEY_NAMES})


def parse_values(values: StackValues) -> StackConfig:
    """Validate a stack's values (read_stack_file, with any overrides) as the program
    would. Encrypted values count as set: a real deploy has the CLI decrypt them."""
    if values.project != NAMESPACE:
        where = f"{values.path.parent / 'Pulumi.yaml'}: " if values.path else ""
        raise ConfigError(
            f"{where}project {values.project!r}, but the program's config namespace is "
            f"{NAMESPACE!r}"
        )
    try:
        return parse_config(
            values.project_values(),
            stack=values.stack,
            secret_keys=values.project_secret_keys(),
            encrypted_keys=values.project_encrypted_keys(),
            region=values.get("aws:region"),
            namespaces=values.namespaces(),
        )
    except ConfigError as exc:
        if values.path is None:
            raise
        raise ConfigError(f"{values.path}: {exc}") from None


def load_stack_file(stack: str, project_dir: Path) -> tuple[StackConfig, StackValues]:
    """Validate `Pulumi.<stack>.yaml` (over Pulumi.yaml's defaults) as the program would,
    without the CLI. Encrypted values count as set; they are never decrypted here."""
    values = read_stack_file(project_dir, stack)
    return parse_values(values), values


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`--config KEY=VALUE` arguments (the rehearsal's and stackinfo's) as a dict,
    later ones winning. A malformed one is a ConfigError naming it."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--config {item!r}: expected KEY=VALUE")
        overrides[key] = value
    return overrides


def check_pulumi_names(
    cfg: StackConfig, *, organization: str | None, project: str, stack: str
) -> None:
    """Pulumi Deployments' settings and OIDC subjects name the Pulumi organization,
    project and stack: check them with the rest of the config, before any resource."""
    if not cfg.deployments_enabled:
        return
    for what, value in (("organization", organization), ("project", project), ("stack", stack)):
        try:
            cp.check_pulumi_name(value, what)
        except cp.PolicyInputError as exc:
            raise ConfigError(f"{NAMESPACE}:deploymentsEnabled = True: Pulumi {exc}") from None


def _all_runtime_keys() -> set[str]:
    # Every config key the engine handed us, so a typo such as `memorysize` is reported
    # instead of silently ignored. No public API lists them (pulumi 3.272 exports
    # get_config(key) only), so this reads the runtime's CONFIG context variable, which
    # set_all_config fills, plus the public get_config_env() (PULUMI_CONFIG).
    keys = set(pulumi.runtime.config.CONFIG.get())
    keys |= set(pulumi.runtime.get_config_env())
    return keys


def environment_warnings(cfg: StackConfig, stack: str) -> list[str]:
    """An environment other than the stack's name is allowed (a stack `dev-alice` may
    deploy `dev`), but it means this stack manages that environment's function, table,
    package key and deployer policy: say so at every preview."""
    if cfg.environment == stack:
        return []
    return [
        f"{NAMESPACE}:environment = {cfg.environment!r} differs from the stack name "
        f"{stack!r}: this stack manages environment {cfg.environment!r}'s resources "
        f"({cfg.names.function}, {cfg.lambda_s3_key}); another stack deploying "
        f"{cfg.environment!r} would fight over them"
    ]


def load_config() -> StackConfig:
    """Read this stack's config from the Pulumi engine and validate it."""
    prefix = f"{NAMESPACE}:"
    every_key = _all_runtime_keys()
    present = {k[len(prefix) :] for k in every_key if k.startswith(prefix)}
    raw = {key: pulumi.runtime.get_config(prefix + key) for key in present | KEY_NAMES}
    secret_keys = {k for k in present if pulumi.runtime.is_config_secret(prefix + k)}
    stack = pulumi.get_stack()
    cfg = parse_config(
        raw,
        stack=stack,
        secret_keys=secret_keys,
        region=pulumi.Config("aws").get("region"),
        namespaces={k.split(":", 1)[0] for k in every_key},
    )
    check_pulumi_names(
        cfg, organization=pulumi.get_organization(), project=pulumi.get_project(), stack=stack
    )
    for message in [
        *cfg.owner_only_warnings,
        *environment_warnings(cfg, stack),
        *cfg.service_warnings,
    ]:
        pulumi.log.warn(message)
    # Hand the secrets on as secret Outputs only, so Pulumi encrypts them in state.
    secrets: dict[str, Any] = {
        _field_name(key): pulumi.Output.secret(raw[key])
        for key in sorted(SECRET_KEYS)
        if getattr(cfg, _field_name(key)) is not None
    }
    return replace(cfg, **secrets) if secrets else cfg
