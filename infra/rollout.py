"""After `pulumi up`: does the strategy service run the task definition just deployed?

`wait_for_steady_state` makes `pulumi up` wait until the service is stable, but a
service the deployment circuit breaker rolled back to the previous revision is stable
too, so the update "succeeds" while the old code runs (hashicorp/terraform-provider-aws
issue 19519). This check closes that gap, as the deploy workflow's last step:

    python -m infra.rollout --cluster C --service S --task-definition ARN [--region R]

Exit 0 when the service's PRIMARY deployment runs ARN and its rollout COMPLETED (or when
the stack has no service: empty arguments); 1 when ECS rolled back or the rollout failed,
with one line saying which revision runs and where the stop reasons are; 2 for bad
arguments. It reads with `ecs:DescribeServices`, which the deployer policy grants on the
service.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

# ECS finishes a rollout shortly after the service is stable; give it that long.
SETTLE_SECONDS = 120.0
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Rollout:
    ok: bool
    message: str


def check_rollout(client: Any, *, cluster: str, service: str, task_definition: str) -> Rollout:
    """One look at the service. A rollout still IN_PROGRESS is not ok yet: its message
    says so, and wait_for_rollout looks again."""
    found = client.describe_services(cluster=cluster, services=[service])
    services = found.get("services") or []
    if not services:
        return Rollout(False, f"service {service} not found in cluster {cluster}")
    deployments = services[0].get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return Rollout(False, f"service {service} has no PRIMARY deployment")
    running = primary.get("taskDefinition", "")
    state = primary.get("rolloutState", "COMPLETED")
    if running != task_definition:
        return Rollout(
            False,
            f"service {service} runs {running}, not {task_definition}: the deployment "
            "circuit breaker rolled it back (the new task never became healthy; see the "
            "service's events and its unexpected-stops log group)",
        )
    if state != "COMPLETED":
        reason = primary.get("rolloutStateReason", "")
        return Rollout(False, f"service {service} rollout of {running} is {state}: {reason}")
    return Rollout(True, f"service {service} runs {running} (rollout COMPLETED)")


def wait_for_rollout(
    client: Any,
    *,
    cluster: str,
    service: str,
    task_definition: str,
    settle_seconds: float = SETTLE_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> Rollout:
    deadline = time.monotonic() + settle_seconds
    while True:
        result = check_rollout(
            client, cluster=cluster, service=service, task_definition=task_definition
        )
        if result.ok or "is IN_PROGRESS" not in result.message or time.monotonic() > deadline:
            return result
        time.sleep(poll_seconds)


def main(argv: list[str] | None = None, *, client: Any = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.rollout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--task-definition", required=True, help="the ARN just deployed")
    parser.add_argument("--region", help="AWS region (default: the environment's)")
    args = parser.parse_args(argv)
    given = [args.cluster, args.service, args.task_definition]
    if not any(given):
        print("no strategy service in this stack: nothing to check")
        return 0
    if not all(given) or not args.task_definition.startswith("arn:"):
        print(
            "error: --cluster, --service and --task-definition (an ARN) go together "
            "(the stack outputs ecs_cluster, ecs_service, task_definition_arn)",
            file=sys.stderr,
        )
        return 2
    if client is None:
        import boto3

        client = boto3.client("ecs", region_name=args.region)
    result = wait_for_rollout(
        client, cluster=args.cluster, service=args.service, task_definition=args.task_definition
    )
    if result.ok:
        print(result.message)
        return 0
    print(f"error: {result.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
