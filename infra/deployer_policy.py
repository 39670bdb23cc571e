"""The deployer policy (the seed's "Minimum Permissions for Deployment") for a stack.

The program exports it as the `deployer_policy` stack output; this command writes
the same document from the stack's YAML without the Pulumi CLI or AWS:

    python -m infra.deployer_policy --stack dev --account-id 123456789012 \
        [--region us-east-1] [--output deployer-policy.dev.json]

The region defaults to the stack's `aws:region`. Errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from infra.config import ConfigError, StackConfig, load_stack_file
from infra.config.rules import REGION_RE, partition_of
from infra.names import layer_prefix
from infra.policies import deployer_policy, parse_arn
from lambda_pkg.artifact import write_json_atomic

PROJECT_DIR = Path(__file__).resolve().parent.parent
_ACCOUNT_RE = re.compile(r"[0-9]{12}", re.ASCII)


def policy_for_stack(
    cfg: StackConfig, *, partition: str, region: str, account_id: str
) -> dict[str, Any]:
    names = cfg.names
    return deployer_policy(
        partition=partition,
        region=region,
        account_id=account_id,
        bucket=cfg.bucket_name,
        key_prefix=cfg.lambda_key_prefix,
        function_name=names.function,
        role_name=names.role,
        layer_name=names.layer if cfg.dependency_layer else None,
        layer_key_prefix=layer_prefix(cfg.environment) if cfg.dependency_layer else None,
        kms_key_arn=cfg.kms_key_arn,
        service=names.service if cfg.strategy_enabled else None,
    )


def policy_for_function_arn(cfg: StackConfig, function_arn: str) -> dict[str, Any]:
    """The program's form: account, region and partition from the function's own ARN,
    so no provider invoke is needed to learn them."""
    partition, region, account_id = parse_arn(function_arn)
    return policy_for_stack(cfg, partition=partition, region=region, account_id=account_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.deployer_policy", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--account-id", required=True, help="12-digit AWS account id")
    parser.add_argument("--region", help="AWS region (default: the stack's aws:region)")
    parser.add_argument("--output", type=Path, help="write the JSON here (default: stdout)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    try:
        if not _ACCOUNT_RE.fullmatch(ns.account_id):
            raise ConfigError(f"--account-id {ns.account_id!r}: must be 12 digits")
        cfg, stack_file = load_stack_file(ns.stack, ns.project_dir)
        region = ns.region or stack_file.get("aws:region")
        if not region or not REGION_RE.fullmatch(str(region)):
            raise ConfigError(
                f"region {region!r}: give --region (e.g. us-east-1) or set aws:region "
                f"in Pulumi.{ns.stack}.yaml"
            )
        policy = policy_for_stack(
            cfg, partition=partition_of(region), region=region, account_id=ns.account_id
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ns.output:
        try:
            write_json_atomic(ns.output, policy)
        except OSError as exc:
            print(f"error: --output {ns.output}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"wrote {ns.output}", file=sys.stderr)
    else:
        print(json.dumps(policy, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
