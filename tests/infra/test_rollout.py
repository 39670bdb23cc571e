"""`python -m infra.rollout`: a deploy fails when ECS rolled the service back, which
`wait_for_steady_state` alone reports as success. ECS's answers come through botocore's
Stubber, so every response has the real DescribeServices shape."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from infra.rollout import main, wait_for_rollout

ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/strategy-dev:{}"
ARGS = ["--cluster", "cloud-trading-bot-dev", "--service", "strategy-dev"]


def deployment(status, revision, state="COMPLETED", reason=""):
    return {
        "id": f"ecs-svc/{revision}{status}",
        "status": status,
        "taskDefinition": ARN.format(revision),
        "rolloutState": state,
        "rolloutStateReason": reason,
    }


@pytest.fixture
def ecs():
    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber


def answer(stubber, *deployments):
    stubber.add_response(
        "describe_services",
        {"services": [{"serviceName": "strategy-dev", "deployments": list(deployments)}]},
        {"cluster": "cloud-trading-bot-dev", "services": ["strategy-dev"]},
    )


def test_the_new_revision_running_is_success(ecs, capsys):
    client, stubber = ecs
    answer(stubber, deployment("PRIMARY", 7))
    assert main([*ARGS, "--task-definition", ARN.format(7)], client=client) == 0
    assert "runs" in capsys.readouterr().out


def test_a_circuit_breaker_rollback_fails_the_deploy(ecs, capsys):
    # GIVEN ECS gave up on revision 8 and went back to 7: the service is stable again
    client, stubber = ecs
    answer(stubber, deployment("PRIMARY", 7), deployment("INACTIVE", 8, "FAILED"))
    # THEN the check fails in one line naming both revisions
    assert main([*ARGS, "--task-definition", ARN.format(8)], client=client) == 1
    err = capsys.readouterr().err
    assert ARN.format(7) in err and ARN.format(8) in err and "rolled it back" in err
    assert err.count("\n") == 1


def test_a_failed_rollout_fails_the_deploy(ecs, capsys):
    client, stubber = ecs
    answer(stubber, deployment("PRIMARY", 8, "FAILED", "tasks failed to start"))
    assert main([*ARGS, "--task-definition", ARN.format(8)], client=client) == 1
    assert "FAILED: tasks failed to start" in capsys.readouterr().err


def test_a_rollout_in_progress_is_waited_for(ecs):
    client, stubber = ecs
    answer(stubber, deployment("PRIMARY", 8, "IN_PROGRESS"))
    answer(stubber, deployment("PRIMARY", 8))
    result = wait_for_rollout(
        client,
        cluster="cloud-trading-bot-dev",
        service="strategy-dev",
        task_definition=ARN.format(8),
        poll_seconds=0,
    )
    assert result.ok
    stubber.assert_no_pending_responses()


def test_a_stack_without_the_service_has_nothing_to_check(capsys):
    # The stack outputs are empty when strategyEnabled is false.
    assert main(["--cluster", "", "--service", "", "--task-definition", ""]) == 0
    assert "nothing to check" in capsys.readouterr().out


def test_half_the_arguments_is_a_usage_error(capsys):
    assert main([*ARGS, "--task-definition", ""]) == 2
    assert "go together" in capsys.readouterr().err
