"""The strategy service's handlers (infra/rehearsal/resources_ecs.py) against in-process
moto: the repository, the image release, the cluster, task definition and service, and
the stop-event chain's log policy and metric filter."""

from __future__ import annotations

import json

import pytest

from infra.rehearsal.errors import ResourceFailed
from infra.rehearsal.resources_ecs import IMAGE_RELEASE, PUSH_SKIPPED
from tests.infra.harness import make_image_layout

ECR_REPO = "aws:ecr/repository:Repository"


def _repository(deploy) -> dict:
    _, out = deploy(
        ECR_REPO, "repo", name="ctb/dev/strategy", imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfigurations=[{"encryptionType": "AES256"}], forceDelete=True,
    )  # fmt: skip
    return out


def test_repository_is_immutable_scanned_and_encrypted(deploy, aws):
    out = _repository(deploy)
    repo = aws.client("ecr").describe_repositories(repositoryNames=["ctb/dev/strategy"])
    (found,) = repo["repositories"]
    assert found["imageTagMutability"] == "IMMUTABLE"
    assert found["imageScanningConfiguration"] == {"scanOnPush": True}
    assert found["encryptionConfiguration"]["encryptionType"] == "AES256"
    assert out["repositoryUrl"] == found["repositoryUri"] and out["arn"] == found["repositoryArn"]


def test_lifecycle_policy_is_applied_and_needs_rules(deploy, aws):
    _repository(deploy)
    policy = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any",
              "countType": "imageCountMoreThan", "countNumber": 10},
              "action": {"type": "expire"}}]}  # fmt: skip
    deploy(
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", "lc", repository="ctb/dev/strategy",
        policy=json.dumps(policy),
    )  # fmt: skip
    got = aws.client("ecr").get_lifecycle_policy(repositoryName="ctb/dev/strategy")
    assert json.loads(got["lifecyclePolicyText"]) == policy
    with pytest.raises(ResourceFailed, match="no rules"):
        deploy(
            "aws:ecr/lifecyclePolicy:LifecyclePolicy", "lc2", repository="ctb/dev/strategy",
            policy='{"rules": []}',
        )  # fmt: skip


def test_image_release_puts_the_manifest_by_digest_and_says_blobs_were_not_pushed(
    deploy, aws, tmp_path
):
    # GIVEN an image layout and the repository
    digest = make_image_layout(tmp_path / "layout")
    url = _repository(deploy)["repositoryUrl"]
    # WHEN the program's ImageRelease is created (inputs as the dynamic resource sends them)
    image_uri, out = deploy(
        IMAGE_RELEASE, "strategy-image", repository_url=url, digest=digest,
        blobs=str(tmp_path / "layout"), __provider="serialized-provider",
        image_uri=None, uploaded=None, uploaded_bytes=None,
    )  # fmt: skip
    # THEN the image is named by digest, and the repository lists that digest
    assert image_uri == out["image_uri"] == f"{url}@{digest}"
    listed = aws.client("ecr").describe_images(
        repositoryName="ctb/dev/strategy", imageIds=[{"imageDigest": digest}]
    )["imageDetails"]
    assert [i["imageDigest"] for i in listed] == [digest]
    # AND the outputs say the blobs were not pushed, and why
    assert out["pushed"] is False and out["push_skipped"] == PUSH_SKIPPED
    assert out["uploaded"] == [] and out["uploaded_bytes"] == 0


def test_image_release_refuses_a_manifest_that_is_not_the_digest(deploy, tmp_path):
    digest = make_image_layout(tmp_path / "layout")
    url = _repository(deploy)["repositoryUrl"]
    manifest = tmp_path / "layout" / "blobs" / "sha256" / digest.split(":")[1]
    manifest.write_bytes(manifest.read_bytes() + b" ")
    with pytest.raises(ResourceFailed, match="other content"):
        deploy(
            IMAGE_RELEASE, "img", repository_url=url, digest=digest, blobs=str(tmp_path / "layout")
        )


def _task_definition(deploy, family: str = "strategy-dev") -> tuple[str, dict]:
    container = {
        "name": "strategy", "image": "repo@sha256:" + "a" * 64, "essential": True,
        "user": "65532:65532", "readonlyRootFilesystem": True, "stopTimeout": 45,
        "environment": [{"name": "LEDGER_TABLE", "value": "ledger"}],
        "healthCheck": {"command": ["CMD", "python", "-m", "backend.service", "health"],
                        "interval": 30, "retries": 3, "startPeriod": 240, "timeout": 10},
    }  # fmt: skip
    return deploy(
        "aws:ecs/taskDefinition:TaskDefinition", "task", family=family,
        requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        volumes=[{"name": "tmp"}], containerDefinitions=json.dumps([container]),
        tags={"app": "ctb"},
    )  # fmt: skip


def test_cluster_task_definition_and_single_writer_service(deploy, aws):
    cluster_arn, cluster = deploy(
        "aws:ecs/cluster:Cluster", "cluster", name="ctb-dev",
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )  # fmt: skip
    task_arn, task = _task_definition(deploy)
    ecs = aws.client("ecs")
    # THEN the cluster has Container Insights, the task definition what was declared
    (found,) = ecs.describe_clusters(clusters=[cluster_arn], include=["SETTINGS"])["clusters"]
    assert found["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert cluster["name"] == "ctb-dev"
    td = ecs.describe_task_definition(taskDefinition=task_arn)["taskDefinition"]
    assert td["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    assert td["containerDefinitions"][0]["environment"] == [
        {"name": "LEDGER_TABLE", "value": "ledger"}
    ]
    assert td["containerDefinitions"][0]["stopTimeout"] == 45
    assert (task["revision"], task["arnWithoutRevision"]) == (1, task_arn.rsplit(":", 1)[0])
    # AND a second registration is a new revision of the same family
    _, again = _task_definition(deploy)
    assert again["revision"] == 2
    # WHEN the service is created with the single-writer deployment, in a real subnet
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/22")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc)["GroupId"]
    # moto drops deploymentConfiguration, so the request itself is read (botocore's hook).
    sent: list[dict] = []
    ecs.meta.events.register(
        "provide-client-params.ecs.CreateService", lambda params, **_: sent.append(dict(params))
    )
    service_arn, service = deploy(
        "aws:ecs/service:Service", "service", name="strategy-dev", cluster=cluster_arn,
        taskDefinition=task_arn, launchType="FARGATE", platformVersion="LATEST",
        desiredCount=1.0, deploymentMinimumHealthyPercent=0.0, deploymentMaximumPercent=100.0,
        deploymentCircuitBreaker={"enable": True, "rollback": True},
        networkConfiguration={"subnets": [subnet], "securityGroups": [group],
                              "assignPublicIp": False},
        enableExecuteCommand=False, waitForSteadyState=True,
    )  # fmt: skip
    (svc,) = ecs.describe_services(cluster=cluster_arn, services=[service_arn])["services"]
    assert svc["taskDefinition"] == task_arn and svc["desiredCount"] == 1
    config = sent[0]["deploymentConfiguration"]
    assert (config["minimumHealthyPercent"], config["maximumPercent"]) == (0, 100)
    assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    network = svc["networkConfiguration"]["awsvpcConfiguration"]
    assert network["assignPublicIp"] == "DISABLED"
    assert service["name"] == "strategy-dev" and service["id"] == service_arn


def test_log_resource_policy_and_metric_filter(deploy, aws):
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/aws/events/stops")
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents",
           "Principal": {"Service": "events.amazonaws.com"}, "Resource": "*"}]}  # fmt: skip
    deploy(
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "p", policyName="stops",
        policyDocument=json.dumps(doc),
    )  # fmt: skip
    policies = logs.describe_resource_policies()["resourcePolicies"]
    assert [json.loads(p["policyDocument"]) for p in policies if p["policyName"] == "stops"] == [
        doc
    ]
    deploy(
        "aws:cloudwatch/logMetricFilter:LogMetricFilter", "m", name="stops-metric",
        logGroupName="/aws/events/stops", pattern='{ $.detail.lastStatus = "STOPPED" }',
        metricTransformation={"name": "UnexpectedTaskStops", "namespace": "CTB", "value": "1",
                              "unit": "Count"},
    )  # fmt: skip
    (flt,) = logs.describe_metric_filters(logGroupName="/aws/events/stops")["metricFilters"]
    assert flt["filterName"] == "stops-metric"
    assert flt["metricTransformations"][0]["metricName"] == "UnexpectedTaskStops"
    with pytest.raises(ResourceFailed, match="no Statement"):
        deploy(
            "aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "bad", policyName="bad",
            policyDocument="{}",
        )  # fmt: skip


def test_event_rule_with_the_stop_pattern(deploy, aws):
    # The existing EventRule handler takes the service's eventPattern ($or, prefix) as is.
    from infra.service import stop_event_pattern

    pattern = json.dumps(stop_event_pattern("arn:aws:ecs:us-east-1:1:cluster/c", "s"))
    deploy("aws:cloudwatch/eventRule:EventRule", "stops", name="stops", eventPattern=pattern)
    rule = aws.client("events").describe_rule(Name="stops")
    assert json.loads(rule["EventPattern"]) == json.loads(pattern)
