"""Every key of the `cloud-trading-bot` namespace: its Pulumi.yaml type, default and rule.

`Pulumi.yaml` declares the same keys with the same defaults; a test keeps the two in
step. Rules that involve two keys (lambdaS3Key and environment, taskCpu and
taskMemory, an ARN and aws:region...) are in infra.config, after every key is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The runtime's own rules, so a value the config accepts never fails at runtime.
from backend.models import TICKER_RE
from backend.settings import BUCKET_RE, ENVIRONMENT_RE, LOG_LEVELS, PROVIDERS
from infra import ci_policies as cp
from infra.config import rules, schedule, service, tags
from infra.config.rules import ArnRule, Invalid, boolean, int_in, json_value, matches, text
from lambda_pkg import limits

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
# Lambda keeps 100 of an account's default quota of 1,000 unreserved (10 of 10 in a
# new account): more than 900 can never be reserved without a quota increase.
RESERVED_CONCURRENCY_MAX = 900

_BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_IPV4_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", re.ASCII)
_KEY_RE = re.compile(r"lambda/(?:[A-Za-z0-9._-]+/)+[A-Za-z0-9._-]+\.zip", re.ASCII)
_IAM_NAME = r"[A-Za-z0-9+=,.@_-]"

KMS_KEY = ArnRule(
    "a KMS key ARN",
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "kms",
    regional=True,
    resource=re.compile(r"key/(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})"),
    resource_rule="key/<key id>; an alias cannot be named in the role's KMS permissions",
    region_reason="S3 encrypts with a key in the bucket's own region",
)
SNS_TOPIC = ArnRule(
    "an SNS topic ARN",
    "arn:aws:sns:us-east-1:123456789012:trading-alerts",
    "sns",
    regional=True,
    resource=re.compile(r"[A-Za-z0-9_-]{1,256}", re.ASCII),
    resource_rule="a standard topic's name; CloudWatch alarms cannot notify a FIFO topic",
    region_reason="CloudWatch alarms notify topics in their own region",
)
GITHUB_OIDC_PROVIDER = ArnRule(
    "the account's GitHub OIDC provider ARN",
    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
    "iam",
    regional=False,
    resource=re.compile(r"oidc-provider/token\.actions\.githubusercontent\.com"),
    resource_rule="oidc-provider/token.actions.githubusercontent.com",
)
PULUMI_OIDC_PROVIDER = ArnRule(
    "the account's Pulumi Cloud OIDC provider ARN",
    "arn:aws:iam::123456789012:oidc-provider/api.pulumi.com/oidc",
    "iam",
    regional=False,
    resource=re.compile(r"oidc-provider/api\.pulumi\.com/oidc"),
    resource_rule="oidc-provider/api.pulumi.com/oidc",
)
IAM_ROLE = ArnRule(
    "an IAM role ARN",
    "arn:aws:iam::123456789012:role/deployer",
    "iam",
    regional=False,
    resource=re.compile(rf"role/(?:{_IAM_NAME}+/)*{_IAM_NAME}{{1,64}}", re.ASCII),
    resource_rule="role/<name>: a role, not a user or policy",
)
ARN_RULES = {
    "kmsKeyArn": KMS_KEY,
    "alarmTopicArn": SNS_TOPIC,
    "githubOidcProviderArn": GITHUB_OIDC_PROVIDER,
    "pulumiOidcProviderArn": PULUMI_OIDC_PROVIDER,
    "deployRoleArn": IAM_ROLE,
}


def environment(value: Any) -> str:
    return matches(
        value,
        ENVIRONMENT_RE,
        "2-16 characters: a lowercase letter, then lowercase letters, digits or '-'",
        max_len=64,
    )


def bucket_name(value: Any) -> str:
    allowed = (
        "a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-', "
        "starting and ending with a letter or digit"
    )
    name = matches(value, BUCKET_RE, allowed, max_len=63)
    if (
        ".." in name
        or ".-" in name
        or "-." in name
        or _IPV4_RE.fullmatch(name)
        or name.startswith(_BUCKET_BAD_PREFIXES)
        or name.endswith(_BUCKET_BAD_SUFFIXES)
    ):
        raise Invalid(allowed + " (no '..', not an IP address, no reserved prefix/suffix)")
    return name


def lambda_key(value: Any) -> str:
    """The shape; that it lies under lambda/<environment>/ is checked with environment."""
    allowed = (
        "an S3 key under lambda/<environment>/ ending in .zip (letters, digits, '.', '_', "
        "'-'), e.g. lambda/dev/lambda_deployment.zip"
    )
    key = text(value, allowed, max_len=1024)
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise Invalid(f"{allowed}, without empty, '.' or '..' path segments")
    return matches(key, _KEY_RE, allowed, max_len=1024)


def symbols(value: Any) -> tuple[str, ...]:
    allowed = (
        f"a non-empty list of up to {MAX_SYMBOLS} distinct tickers (letters, digits, . = - "
        'and a leading ^), e.g. ["SPY","QQQ"]'
    )
    items: list[Any]
    if isinstance(value, str) and not value.lstrip().startswith("["):
        # `pulumi config set symbols SPY,QQQ`: a comma-separated line.
        items = [s.strip() for s in text(value, allowed, max_len=4096).split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = json_value(value, list, allowed)
    if not items or len(items) > MAX_SYMBOLS:
        raise Invalid(f"{allowed} (this has {len(items)})")
    seen: dict[str, str] = {}
    for item in items:
        # ASCII first: a long s (U+017F) upper-cases to S, and would pass the ticker rule.
        if not isinstance(item, str) or not item.isascii() or not TICKER_RE.fullmatch(item.upper()):
            raise Invalid(f"{allowed}; not a ticker: {item!r}")
        if item.upper() in seen:
            raise Invalid(f"{allowed}; duplicates given: {seen[item.upper()]!r} and {item!r}")
        seen[item.upper()] = item
    return tuple(items)


def log_retention(value: Any) -> int:
    allowed = "a retention CloudWatch allows: " + ", ".join(str(d) for d in LOG_RETENTION_DAYS)
    days = rules.integer(value, 1, 3653, allowed)
    if days not in LOG_RETENTION_DAYS:
        raise Invalid(allowed)
    return days


def reserved_concurrency(value: Any) -> int:
    allowed = (
        f"-1 (unreserved) or an integer from 1 to {RESERVED_CONCURRENCY_MAX} (Lambda keeps "
        "100 of the default 1,000 unreserved; 0 would stop every invocation)"
    )
    number = rules.integer(value, -1, RESERVED_CONCURRENCY_MAX, allowed)
    if number == 0:
        raise Invalid(allowed)
    return number


def secret(value: Any) -> Any:
    # Only presence matters here; the value stays inside a secret Output.
    return None if value is None or value == "" else value


def github_repository(value: Any) -> str | None:
    if value is None or value == "":
        return None
    allowed = "empty, or owner/repo, e.g. acme/cloud-trading-bot (no URL, no .git)"
    return matches(value, cp.REPOSITORY_RE, allowed, max_len=200)


def github_branch(value: Any) -> str:
    # The short name: the trust policies and Pulumi Deployments add refs/heads/ themselves.
    allowed = "a short git branch name, e.g. main (not refs/heads/main)"
    branch = matches(value, cp.BRANCH_RE, allowed, max_len=200)
    if branch.startswith("refs/"):
        raise Invalid(allowed)
    return branch


def github_environment(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return matches(
        value,
        cp.ENVIRONMENT_RE,
        "empty, or a GitHub environment name: letters, digits, '.', '_', '-' or spaces",
        max_len=255,
    )


def short_text(max_len: int, allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value == "":
            raise Invalid(f"{allowed} (not empty)")
        return text(value, allowed, max_len=max_len)

    return parse


def _number(lo: float, hi: float, allowed: str) -> Callable[[Any], float]:
    return lambda value: rules.number(value, lo, hi, allowed)


def _flat(allowed: str) -> Callable[[Any], Any]:
    return lambda value: rules.flat_object(value, allowed)


@dataclass(frozen=True)
class Key:
    """One config key: its Pulumi.yaml type, its default (None: computed or unset), its rule."""

    name: str
    # Pulumi.yaml type: string | integer | boolean | array; "object" and "number" (with a
    # fraction) are declared there without a type: the CLI has neither in a project file.
    type: str
    default: Any
    parse: Callable[[Any], Any]


KEYS: tuple[Key, ...] = (
    # "" for these two means "computed": the stack name, and lambda/<env>/lambda_deployment.zip.
    Key("environment", "string", "", environment),
    Key("bucketName", "string", DEFAULT_BUCKET, bucket_name),
    Key("bucketOwner", "boolean", False, boolean),
    Key("lambdaS3Key", "string", "", lambda_key),
    Key("runtime", "string", limits.DEFAULT_RUNTIME, rules.one_of(limits.RUNTIMES)),
    Key("architecture", "string", limits.DEFAULT_ARCHITECTURE, rules.one_of(limits.ARCHITECTURES)),
    Key("memorySize", "integer", 512, int_in(128, 10240)),
    Key("timeout", "integer", 300, int_in(1, 900)),
    # 22:00 UTC on weekdays: after the close (and its 20-minute settling) in summer and
    # winter time, hours after a half-day's close; holidays answer market_closed.
    Key("schedule", "string", "cron(0 22 ? * MON-FRI *)", schedule.schedule),
    Key("symbols", "array", list(DEFAULT_SYMBOLS), symbols),
    # A year: FSBP CloudWatch.16's default parameter, and the trading decisions' audit trail.
    Key("logRetentionDays", "integer", 365, log_retention),
    # Unreserved by default: a new account (concurrency quota 10) refuses any reservation.
    Key("reservedConcurrency", "integer", -1, reserved_concurrency),
    Key("dependencyLayer", "boolean", False, boolean),
    Key("marketDataApiKey", "string", "", secret),
    Key("marketDataProvider", "string", "yfinance", rules.one_of(PROVIDERS)),
    Key("logLevel", "string", "INFO", rules.one_of(LOG_LEVELS)),
    Key("kmsKeyArn", "string", "", rules.optional(rules.arn(KMS_KEY))),
    # S3 lifecycle accepts NewerNoncurrentVersions from 1 to 100.
    Key("lambdaNoncurrentVersions", "integer", 5, int_in(1, 100)),
    Key("lambdaNoncurrentDays", "integer", 30, int_in(1, 3650)),
    Key("deletionProtection", "boolean", False, boolean),
    Key("maxRetryAttempts", "integer", 1, int_in(0, 2)),
    Key("maxEventAgeSeconds", "integer", 900, int_in(60, 21600)),
    Key("alarmTopicArn", "string", "", rules.optional(rules.arn(SNS_TOPIC))),
    Key("tags", "object", {}, tags.tags),
    Key("deploymentsEnabled", "boolean", False, boolean),
    Key("ciRoleEnabled", "boolean", False, boolean),
    Key("githubRepository", "string", "", github_repository),
    Key("githubBranch", "string", "main", github_branch),
    Key("githubEnvironment", "string", "", github_environment),
    Key("githubOidcProviderArn", "string", "", rules.optional(rules.arn(GITHUB_OIDC_PROVIDER))),
    Key("pulumiOidcProviderArn", "string", "", rules.optional(rules.arn(PULUMI_OIDC_PROVIDER))),
    Key("deployRoleArn", "string", "", rules.optional(rules.arn(IAM_ROLE))),
    Key("deploymentsPushToDeploy", "boolean", True, boolean),
    Key("deploymentsPreviewPullRequests", "boolean", True, boolean),
    # The trading half (docs/CONTRACTS.md section 10). Types are parsed here; what the
    # values mean is backend.trading.settings.parse_trading_config's (infra.config.trading).
    Key("strategyEnabled", "boolean", True, boolean),
    Key("strategy", "string", "sma_crossover", short_text(64, "a strategy name")),
    Key("strategyParams", "object", {}, _flat("a map of strategy parameters to numbers")),
    Key("barInterval", "string", "1d", short_text(16, "a bar interval such as 1d")),
    Key("riskLimits", "object", {}, _flat("a map of risk limits to numbers or true/false")),
    Key("tradingMode", "string", "paper", short_text(32, "a trading mode")),
    Key("liveTrading", "boolean", False, boolean),
    # Numbers with a fraction: Pulumi.yaml has no type for them, so they are untyped there.
    Key("paperCash", "number", 100000, _number(1, 1e12, "a cash amount from 1 to 1e12")),
    Key("paperSlippageBps", "number", 5, _number(0, 1000, "basis points from 0 to 1000")),
    Key("paperFeeRate", "number", 0, _number(0, 0.1, "a fraction of notional from 0 to 0.1")),
    Key("taskCpu", "integer", 256, service.task_cpu),
    Key("taskMemory", "integer", 512, service.task_memory),
    Key("serviceBaseImage", "string", "", service.base_image),
    Key("serviceNetwork", "string", "private-nat", service.network),
    Key("serviceSubnetIds", "array", [], service.subnet_ids),
    # Secret: the Alpaca keys for the broker secret (infra/config/service.py says the shape).
    Key("brokerCredentials", "string", "", secret),
)
KEY_NAMES = frozenset(k.name for k in KEYS)
DEFAULTS = {k.name: k.default for k in KEYS}
SECRET_KEYS = frozenset({"marketDataApiKey", "brokerCredentials"})
