"""Hostile config values: every key refuses wrong types, invisible characters, huge and
odd values with one line naming the key, and each rule checks meaning, not only shape.

Pure validation (infra.config.parse_config), no engine; the program-level cases are in
test_program.py and the YAML-level ones in test_stackfile.py.
"""

from __future__ import annotations

import pytest

from infra.config import KEYS, ConfigError, parse_config
from infra.config.keys import SECRET_KEYS
from infra.config.service import FARGATE_MEMORY

NS = "cloud-trading-bot"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC = "arn:aws:sns:us-east-1:123456789012:trading-alerts"
DIGEST = "a" * 64

# A good value for every key but the secret one (tested apart): each is accepted on its
# own, and each hostile variant below is built from it.
GOOD = {
    "environment": "dev",
    "bucketName": "my-bucket-1",
    "bucketOwner": "true",
    "lambdaS3Key": "lambda/dev/app.zip",
    "runtime": "python3.13",
    "architecture": "arm64",
    "memorySize": "1024",
    "timeout": "60",
    "schedule": "cron(0 21 ? * MON-FRI *)",
    "symbols": '["SPY"]',
    "logRetentionDays": "30",
    "reservedConcurrency": "2",
    "dependencyLayer": "true",
    "marketDataProvider": "fixture",
    "logLevel": "DEBUG",
    "kmsKeyArn": KMS,
    "lambdaNoncurrentVersions": "3",
    "lambdaNoncurrentDays": "10",
    "deletionProtection": "true",
    "maxRetryAttempts": "0",
    "maxEventAgeSeconds": "120",
    "alarmTopicArn": TOPIC,
    "tags": '{"team": "quant"}',
    "deploymentsEnabled": "false",
    "ciRoleEnabled": "false",
    "githubRepository": "acme/bot",
    "githubBranch": "release/v2",
    "githubEnvironment": "production",
    "githubOidcProviderArn": (
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    ),
    "pulumiOidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/api.pulumi.com/oidc",
    "deployRoleArn": "arn:aws:iam::123456789012:role/ci/deployer",
    "deploymentsPushToDeploy": "false",
    "deploymentsPreviewPullRequests": "true",
    "strategyEnabled": "false",
    "strategy": "rsi_mean_reversion",
    "strategyParams": '{"fast": 10, "slow": 30}',  # the default strategy's parameters
    "barInterval": "1d",
    "riskLimits": '{"maxOpenPositions": 3, "allowShort": false}',
    "tradingMode": "alpaca-paper",
    "liveTrading": "false",
    "paperCash": "25000.50",
    "paperSlippageBps": "2.5",
    "paperFeeRate": "0.001",
    "taskCpu": "256",  # alone: the default taskMemory (512) fits 256 only
    "taskMemory": "2048",
    "serviceBaseImage": f"public.ecr.aws/docker/library/python:3.12-slim@sha256:{DIGEST}",
    "serviceNetwork": "public-ip",
    "serviceSubnetIds": "[]",
}


def problems(raw, *, stack="dev", **kwargs) -> list[str]:
    try:
        parse_config(raw, stack=stack, **kwargs)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert lines[0] == f"invalid stack configuration for stack {stack!r}:"
        return [line.strip() for line in lines[1:]]
    return []


def one_problem(raw, **kwargs) -> str:
    found = problems(raw, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_every_key_has_a_good_value_here():
    assert set(GOOD) == {k.name for k in KEYS} - SECRET_KEYS


@pytest.mark.parametrize("key", sorted(GOOD))
def test_each_good_value_is_accepted(key):
    assert problems({key: GOOD[key]}) == []


def _hostile(key: str, kind: str) -> list[object]:
    """Wrong values for a key of this Pulumi.yaml type, built from a good one."""
    good = GOOD[key]
    common: list[object] = [
        good + "\n",  # `echo value | pulumi config set`
        " " + good,
        good[:1] + "\u200b" + good[1:],  # a zero-width space
        good[:1] + "\x00" + good[1:],
        good[:1] + "\u202e" + good[1:],  # a right-to-left override
        "x" * 5000,
        "1" * 5000,
        ["a"],
        {"a": "b"},
    ]
    if kind == "integer":
        return [
            *common,
            *("1e3", "0x10", "0o17", "5_000", "+5", "\uff15\uff11\uff12", "nan", "inf"),
            *("-5", "-0", "true", "", "[1]", '{"a": 1}', "512.0", "2024-01-01"),
            1.5,
            512.0,
            float("nan"),
            True,
            10**5000,
        ]
    if kind == "number":
        return [
            *common,
            *("nan", "NaN", "inf", "-inf", "1e999", "0x10", "1_000", "1,5", "", "true"),
            *("[1]", '{"a": 1}', "-5", "\uff15", "5.", ".5", "1e5000", "1" * 30),
            float("nan"),
            float("inf"),
            -5,
            True,
            10**5000,
        ]
    if kind == "boolean":
        return [*common, "yes", "no", "on", "off", "1", "0", "TRUE", "", "[true]", 1, 0.0]
    if kind in ("array", "object"):
        # Whitespace around JSON changes nothing, and ["a"] / {"a": "b"} are good values.
        return [
            *common[2:-2],
            # (5 and true are tickers, as `pulumi config set symbols 5` means)
            *(() if key == "symbols" else ("5", "true")),
            *('"x"', "{", "[", "[" * 5000, "{" * 5000, "[1e999]", "[NaN]"),
            *('{"a": {"b": {"c": 1}}}', '{"a": 1, "a": 2}', '{"a": ' + "9" * 5000 + "}"),
            *(f"[{'1' * 5000}]", '[["SPY"]]', "[null]", '{"a": [1]}'),
            5,
            True,
        ]
    return [*common, 5, True, 1.5]


HOSTILE = [
    (key.name, value)
    for key in KEYS
    if key.name not in SECRET_KEYS
    for value in _hostile(key.name, key.type)
    if value != GOOD[key.name]
]


def _id(key: str, value: object) -> str:
    # repr() of a 5,000-digit integer raises, and xdist needs the same ids on each worker.
    shown = value if isinstance(value, str) else type(value).__name__
    return f"{key}-{ascii(shown)[:30]}-{len(str(shown))}"


@pytest.mark.parametrize(("key", "value"), HOSTILE, ids=[_id(key, value) for key, value in HOSTILE])
def test_every_hostile_value_is_one_line_naming_the_key(key, value):
    # GIVEN a wrong value for one key WHEN the config is parsed
    line = one_problem({key: value})
    # THEN one short line names the key and the rule, and nothing else is blamed
    assert line.startswith(f"{NS}:{key} = "), line
    assert ": must " in line
    assert "\n" not in line and len(line) < 700
    assert "Traceback" not in line


def test_the_catalogue_is_wide():
    # A guard against the catalogue quietly shrinking: 47 keys, about 20 values each.
    assert len(HOSTILE) > 700


# ---- issue 10, section 3, item by item


def test_a_trailing_newline_is_refused_in_every_pattern_key():
    for key in (
        "environment",
        "bucketName",
        "lambdaS3Key",
        "schedule",
        "kmsKeyArn",
        "alarmTopicArn",
        "githubRepository",
        "githubBranch",
        "githubOidcProviderArn",
        "pulumiOidcProviderArn",
        "deployRoleArn",
    ):
        line = one_problem({key: GOOD[key] + "\n"})
        assert f"{NS}:{key} = " in line and "U+000A LINE FEED" in line, line
    assert "LINE FEED" in one_problem({"tags": '{"team": "quant\\n"}'})


def test_a_bad_environment_is_blamed_on_environment_not_on_the_package_key():
    # GIVEN environment "dev\n" set explicitly, and the package key left to its default
    found = problems({"environment": "dev\n"})
    # THEN the one problem names environment (no function name or ARN gets a newline)
    assert found == [found[0]] and found[0].startswith(f"{NS}:environment = 'dev\\n'")
    assert "lambdaS3Key" not in found[0]
    # AND with the key set explicitly it is still environment alone
    found = problems({"environment": "dev\n", "lambdaS3Key": "lambda/dev/x.zip"})
    assert len(found) == 1 and found[0].startswith(f"{NS}:environment")


def test_a_5000_digit_memory_size_is_one_line_naming_the_key():
    line = one_problem({"memorySize": "9" * 5000})
    assert line.startswith(f"{NS}:memorySize = '9999")
    assert "(5,000 characters)" in line and "5,000-digit number" in line
    assert len(line) < 200


def test_a_look_alike_is_named_for_what_it_is():
    # GIVEN "dev" spelt with a Cyrillic e
    line = one_problem({"environment": "d\u0435v"})
    # THEN the message shows it escaped and names the character
    assert "'d\\u0435v'" in line and "CYRILLIC SMALL LETTER IE" in line


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("cron(a b c d e f)", "minutes 'a' is not a number"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 * *)", "six fields"),
        ("cron(0 12 * * ? * *)", "six fields"),
        ("cron(0  12 * * ? *)", "six fields"),
        ("cron(60 12 * * ? *)", "minutes 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours 24 is outside 0-23"),
        ("cron(0 12 0 * ? *)", "day-of-month 0 is outside 1-31"),
        ("cron(0 12 * 13 ? *)", "month 13 is outside 1-12"),
        ("cron(0 12 ? * 8 *)", "day-of-week 8 is outside 1-7"),
        ("cron(0 12 * * ? 1969)", "year 1969 is outside 1970-2199"),
        ("cron(0 12 * * ? 2200)", "year 2200 is outside"),
        ("cron(0 12 ? * FRI-MON *)", "runs backwards"),
        ("cron(*/0 12 * * ? *)", "increment '0'"),
        ("cron(0 12 ? * 2#6 *)", "N#k takes k from 1 to 5"),
        ("cron(0 ? * * ? *)", "'?' is not allowed in hours"),
        ("cron(0 0 31 2 ? *)", "never fire"),
        ("cron(0 0 30,31 FEB ? *)", "never fire"),
        ("cron(0 12 1,,2 * ? *)", "empty list item"),
        ("cron(0 12 * * ? *", None),
        ("rate(99999999999999999999 minutes)", None),
        ("rate(525601 minutes)", "at most a year"),
        ("rate(366 days)", "at most a year"),
        ("rate(0 minutes)", None),
        ("rate(015 minutes)", None),
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("rate(5  minutes)", None),
        ("rate(5 weeks)", None),
        ("rate(-5 minutes)", None),
        ("RATE(5 minutes)", None),
        ("at(2026-01-01T00:00:00)", None),
    ],
)
def test_schedules_are_checked_for_meaning(schedule, fragment):
    line = one_problem({"schedule": schedule})
    assert line.startswith(f"{NS}:schedule = "), line
    if fragment:
        assert fragment in line, line


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 minute)",
        "rate(525600 minutes)",
        "rate(365 days)",
        "rate(8760 hours)",
        "cron(0 12 * * ? *)",
        "cron(0/15 * ? * MON-FRI *)",
        "cron(0 14 ? * mon-fri *)",
        "cron(15 10 L * ? *)",
        "cron(0 9 LW * ? 2026-2030)",
        "cron(0 9 15W * ? *)",
        "cron(0 18 ? * 6L *)",
        "cron(0 18 ? * FRI#3 *)",
        "cron(0 0 29 2 ? *)",
        "cron(0,30 8-16/2 1,15 JAN,JUL ? *)",
        "cron(5/10 * * * ? *)",
    ],
)
def test_valid_schedules_pass(schedule):
    assert parse_config({"schedule": schedule}, stack="dev").schedule == schedule


def test_tags_follow_the_aws_rules():
    def tag_problem(tags: dict[str, object]) -> str:
        return one_problem({"tags": tags})

    # 47 of the config's own plus the program's three make AWS's 50; one more is refused.
    ok = {f"k{i}": "v" for i in range(47)}
    assert parse_config({"tags": ok}, stack="dev").all_tags.keys() >= ok.keys()
    assert "this has 48" in tag_problem({**ok, "k47": "v"})
    assert "at most 128" in tag_problem({"k" * 129: "v"})
    assert "at most 256" in tag_problem({"k": "v" * 257})
    parse_config({"tags": {"k" * 128: "v" * 256}}, stack="dev")
    for reserved in ("aws:created", "AWS:created", "Aws:x"):
        assert "reserved for AWS" in tag_problem({reserved: "x"})
    assert "a tag key is empty" in tag_problem({"": "x"})
    assert "U+0023" in tag_problem({"cost#center": "x"})
    assert "U+003B" in tag_problem({"team": "a;b"})
    assert "quote it as a string" in tag_problem({"team": 5})
    assert "quote it as a string" in tag_problem({"team": None})
    assert "leading or trailing whitespace" in tag_problem({" team": "x"})
    assert "differ only in case" in tag_problem({"Team": "a", "team": "b"})
    # Unicode letters, digits, spaces and _ . : / = + - @ are AWS's own set
    parse_config({"tags": {"équipe": "données 2026", "path/a:b=c+d-e@f_g.h": ""}}, stack="dev")


@pytest.mark.parametrize(
    "key", ["project", "environment", "managed-by", "Environment", "MANAGED-BY", "\uff50roject"]
)
def test_the_programs_own_tags_are_never_overwritten(key):
    line = one_problem({"tags": {key: "mine"}})
    assert "the program sets project, environment, managed-by itself" in line


def test_symbols_are_distinct_regardless_of_case_and_ascii():
    assert "duplicates given: 'SPY' and 'spy'" in one_problem({"symbols": ["SPY", "spy"]})
    # a long s upper-cases to S: it would pass the ticker rule as "SPY"
    assert "not a ticker" in one_problem({"symbols": ["\u017fpy"]})
    assert "not a ticker" in one_problem({"symbols": ["SPY "]})
    assert "not a ticker" in one_problem({"symbols": "SPY,,QQQ"})
    assert parse_config({"symbols": "SPY, QQQ"}, stack="dev").symbols == ("SPY", "QQQ")


@pytest.mark.parametrize(
    ("value", "ok"),
    [("-1", True), ("1", True), ("900", True), ("901", False), ("0", False), ("-2", False)],
)
def test_reserved_concurrency_is_bounded(value, ok):
    found = problems({"reservedConcurrency": value})
    assert (found == []) is ok, found


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("lambda/dev.zip", "under lambda/<environment>/"),
        ("lambda/prod/lambda_deployment.zip", "must be under lambda/dev/"),
        ("lambda/devx/app.zip", "must be under lambda/dev/"),
        ("lambda/dev/layers/app.zip", "holds the dependency layers"),
        ("lambda/dev//app.zip", "empty, '.' or '..' path segments"),
        ("lambda/dev/../prod/app.zip", "empty, '.' or '..' path segments"),
        ("lambda/dev/app.ZIP", "ending in .zip"),
    ],
)
def test_the_package_key_lies_under_the_stacks_own_folder(key, fragment):
    line = one_problem({"lambdaS3Key": key})
    assert line.startswith(f"{NS}:lambdaS3Key = {key!r}: must") and fragment in line, line


def test_a_package_key_below_the_environment_folder_is_fine():
    cfg = parse_config({"lambdaS3Key": "lambda/dev/v2/app.zip"}, stack="dev")
    assert cfg.lambda_key_prefix == "lambda/dev/v2/"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("kmsKeyArn", TOPIC, "an ARN of sns"),
        ("kmsKeyArn", KMS.replace(":key/", ":alias/"), "an alias cannot be named"),
        ("kmsKeyArn", KMS.replace("123456789012", "12345678901"), "account is not 12 digits"),
        ("kmsKeyArn", KMS.replace("1234", "\u0661\u0662\u0663\u0664", 1), "ASCII only"),
        ("kmsKeyArn", KMS.replace("arn:aws:", "arn:aws-moon:"), "unknown partition"),
        ("kmsKeyArn", KMS.replace("us-east-1", "eu-west-1"), "region us-east-1"),
        ("kmsKeyArn", KMS.replace("arn:aws:", "arn:aws-cn:"), "partition aws"),
        ("kmsKeyArn", KMS.replace("us-east-1", ""), "no region"),
        ("alarmTopicArn", TOPIC + ".fifo", "cannot notify a FIFO topic"),
        ("alarmTopicArn", TOPIC.replace("us-east-1", "us-west-2"), "alarms notify topics"),
        ("alarmTopicArn", "trading-alerts", "not an ARN"),
        ("deployRoleArn", "arn:aws:iam::123456789012:user/ci", "not a user"),
        ("deployRoleArn", "arn:aws:iam:us-east-1:123456789012:role/ci", "name no region"),
        ("deployRoleArn", "arn:aws-cn:iam::123456789012:role/ci", "partition aws"),
        ("deployRoleArn", "arn:aws:sts::123456789012:assumed-role/ci/x", "an ARN of sts"),
        ("githubOidcProviderArn", GOOD["pulumiOidcProviderArn"], "githubusercontent"),
        ("pulumiOidcProviderArn", GOOD["githubOidcProviderArn"], "api.pulumi.com/oidc"),
    ],
)
def test_arns_of_the_wrong_service_partition_or_region_are_refused(key, value, fragment):
    line = one_problem({key: value}, region="us-east-1")
    assert line.startswith(f"{NS}:{key} = ") and fragment in line, line


def test_arns_in_another_partition_fit_a_stack_there():
    cn_key = KMS.replace("arn:aws:", "arn:aws-cn:").replace("us-east-1", "cn-north-1")
    cfg = parse_config({"kmsKeyArn": cn_key}, stack="dev", region="cn-north-1")
    assert cfg.kms_key_arn == cn_key


def test_a_bad_aws_region_is_named():
    assert one_problem({}, region="us-east-1\n").startswith("aws:region = 'us-east-1\\n': must")


def test_a_typo_in_the_namespace_is_reported():
    line = one_problem({}, namespaces={"aws", "cloud-trading-bots", NS})
    assert line.startswith("cloud-trading-bots: unknown config namespace; did you mean")
    assert problems({}, namespaces={"aws", "pulumi", "random", NS}) == []


def test_only_the_api_key_may_be_secret():
    line = one_problem({"memorySize": "512"}, secret_keys={"memorySize"})
    assert "memorySize is stored as a secret" in line
    line = one_problem({}, encrypted_keys={"bucketName"})
    assert "bucketName is stored as a secret" in line
    # the API key, encrypted in the stack file, counts as set
    cfg = parse_config({}, stack="dev", encrypted_keys={"marketDataApiKey"})
    assert cfg.market_data_api_key is not None


@pytest.mark.parametrize("key", ["sk-123\n", " sk-123", "sk\x00123", "sk-\u200b123"])
def test_an_api_key_with_invisible_characters_is_refused_without_echo(key):
    line = one_problem({"marketDataApiKey": key}, secret_keys={"marketDataApiKey"})
    assert line.startswith(f"{NS}:marketDataApiKey = <secret>: must")
    assert "sk" not in line.replace("--secret", "")


# ---- the strategy service's keys


def test_every_fargate_pair_is_accepted_and_no_other():
    for cpu, memories in FARGATE_MEMORY.items():
        for memory in memories:
            assert problems({"taskCpu": str(cpu), "taskMemory": str(memory)}) == []
    line = one_problem({"taskCpu": "256", "taskMemory": "4096"})
    assert line.startswith(f"{NS}:taskMemory = '4096': must be one of Fargate's sizes")
    assert "taskCpu 256: 512, 1024, 2048" in line
    line = one_problem({"taskCpu": "4096", "taskMemory": "8000"})
    assert "8192 to 30720 in steps of 1024" in line
    assert one_problem({"taskCpu": "1000"}).startswith(f"{NS}:taskCpu = '1000': must")


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        ("python:3.12-slim", "a tag alone can move"),
        (f"python:3.12-slim@sha256:{'A' * 64}", "lowercase hex"),
        (f"python:3.12-slim@sha512:{'a' * 128}", None),
        (f"python:3.12-slim@sha256:{'a' * 63}", None),
        (f"Python:3.12-slim@sha256:{DIGEST}", None),
        (f"python:3.11-slim@sha256:{DIGEST}", "runs Python 3.11"),
        (f"docker.io/library/python:3.13@sha256:{DIGEST}", "runs Python 3.13"),
        (f"python:3.12-slim @sha256:{DIGEST}", None),
    ],
)
def test_the_service_base_image_is_pinned_and_fits_the_runtime(image, fragment):
    line = one_problem({"serviceBaseImage": image})
    assert line.startswith(f"{NS}:serviceBaseImage = ") and (fragment or "") in line, line


@pytest.mark.parametrize(
    "image",
    [
        f"python:3.12-slim@sha256:{DIGEST}",
        f"python@sha256:{DIGEST}",
        f"registry.example.com:5000/team/base-image:v1.2@sha256:{DIGEST}",
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/base:latest@sha256:{DIGEST}",
    ],
)
def test_pinned_images_are_accepted(image):
    assert parse_config({"serviceBaseImage": image}, stack="dev").service_base_image == image


def test_the_service_network_and_its_subnets_agree():
    subnets = '["subnet-0123abcd", "subnet-0123456789abcdef0"]'
    cfg = parse_config({"serviceNetwork": "subnets", "serviceSubnetIds": subnets}, stack="dev")
    assert cfg.service_subnet_ids == ("subnet-0123abcd", "subnet-0123456789abcdef0")
    assert "must list the subnets" in one_problem({"serviceNetwork": "subnets"})
    assert "would be ignored" in one_problem({"serviceSubnetIds": subnets})
    assert "listed twice" in one_problem(
        {"serviceNetwork": "subnets", "serviceSubnetIds": '["subnet-0123abcd","subnet-0123abcd"]'}
    )
    line = one_problem({"serviceNetwork": "private-endpoints", "tradingMode": "alpaca-paper"})
    assert line.startswith(f"{NS}:serviceNetwork = 'private-endpoints': must reach the internet")
    assert problems({"serviceNetwork": "private-endpoints", "tradingMode": "paper"}) == []


def test_trading_problems_join_the_other_keys_problems():
    # GIVEN live trading asked for on dev, an unknown mode and a bad memory size
    found = problems({"liveTrading": "true", "tradingMode": "yolo", "memorySize": "64"})
    # THEN all three are reported at once, each naming its key
    assert any(p.startswith(f"{NS}:memorySize = '64'") for p in found)
    assert any(p.startswith(f"{NS}:liveTrading") for p in found)
    assert any(p.startswith(f"{NS}:tradingMode") for p in found)


def test_live_trading_needs_prod_and_the_explicit_switch():
    live = {"liveTrading": "true", "tradingMode": "alpaca-live"}
    assert problems(live, stack="prod") == []
    assert parse_config(live, stack="prod").trading_settings["liveTrading"] is True
    assert any(p.startswith(f"{NS}:liveTrading") for p in problems(live, stack="dev"))
    found = problems({"tradingMode": "alpaca-live"}, stack="prod")
    assert any("liveTrading" in p for p in found), found


def test_empty_maps_and_lists_mean_none():
    cfg = parse_config(
        {"tags": "", "strategyParams": "", "riskLimits": "", "serviceSubnetIds": ""},
        stack="dev",
    )
    assert (dict(cfg.tags), dict(cfg.strategy_params), dict(cfg.risk_limits)) == ({}, {}, {})
    assert cfg.service_subnet_ids == ()


def test_trading_settings_are_the_typed_values():
    cfg = parse_config(
        {k: GOOD[k] for k in ("strategyParams", "riskLimits", "paperCash")}, stack="dev"
    )
    settings = cfg.trading_settings
    assert settings["strategyParams"] == {"fast": 10, "slow": 30}
    assert settings["riskLimits"] == {"maxOpenPositions": 3, "allowShort": False}
    assert settings["paperCash"] == 25000.5
    assert settings["tradingMode"] == "paper"
