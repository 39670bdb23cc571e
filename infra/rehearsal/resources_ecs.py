"""The strategy service (infra/service.py): its ECR repository and lifecycle policy, the
image release (the dynamic resource of infra/image_release.py), the ECS cluster, task
definition and service, and the stop-event chain's log resource policy and metric filter.

Plain dicts (RESOURCES, INVOKES) the engine merges into its registry: no decorators.

The image release. moto's ECR has the control plane (repositories, PutImage, images by
digest) but no registry (the v2 API blobs are pushed through), and the repository's URL
is an amazonaws.com host the rehearsal must never reach. So the handler does what can be
done locally: it reads the manifest from the image's blobs and checks it is the digest's
(push_release's own check), then puts that manifest into the emulated repository by
digest, so the repository lists the image the task definition names. The blobs are not
pushed; the outputs say so (`pushed` false, `push_skipped` the reason) and the
rehearsal's summary repeats it. The push itself is tested against a real registry in
tests/infra/test_image_release.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.rehearsal.clients import EmulatorClients, Handler, IdAndOutputs, Inputs, Invoke
from infra.rehearsal.shapes import given, json_document, number, require, tags

IMAGE_RELEASE = "pulumi-python:dynamic/ecr:ImageRelease"
PUSH_SKIPPED = (
    "blobs not pushed: the emulator's ECR has no registry API (moto); the manifest was put "
    "into the repository by digest, and the rehearsal runs the image from its local layers"
)


def repository(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    repo_name = inputs.get("name") or name
    kwargs = {"repositoryName": repo_name, **given(inputs, imageTagMutability="imageTagMutability")}
    scanning = inputs.get("imageScanningConfiguration") or {}
    if scanning:
        kwargs["imageScanningConfiguration"] = {"scanOnPush": bool(scanning.get("scanOnPush"))}
    encryption = (inputs.get("encryptionConfigurations") or [None])[0]
    if encryption:
        kwargs["encryptionConfiguration"] = {"encryptionType": encryption["encryptionType"]}
        if encryption.get("kmsKey"):
            kwargs["encryptionConfiguration"]["kmsKey"] = encryption["kmsKey"]
    kwargs.update(tags(inputs, "tags"))
    created = aws.client("ecr").create_repository(**kwargs)["repository"]
    return repo_name, {
        "name": repo_name,
        "arn": created["repositoryArn"],
        "registryId": created["registryId"],
        "repositoryUrl": created["repositoryUri"],
    }


def lifecycle_policy(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "repository", "policy")
    policy = inputs["policy"]
    text = policy if isinstance(policy, str) else json.dumps(policy)
    if not json.loads(text).get("rules"):
        raise ValueError("the lifecycle policy has no rules")
    put = aws.client("ecr").put_lifecycle_policy(
        repositoryName=inputs["repository"], lifecyclePolicyText=text
    )
    return inputs["repository"], {"registryId": put["registryId"]}


def image_release(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    from lambda_pkg.image import oci

    require(inputs, "repository_url", "digest", "blobs")
    url, digest = inputs["repository_url"], inputs["digest"]
    algorithm, _, hexdigest = digest.partition(":")
    path = Path(inputs["blobs"]) / "blobs" / algorithm / hexdigest
    try:
        manifest = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"image {digest}: cannot read its manifest ({exc.strerror})") from None
    if oci.sha256_digest(manifest) != digest:
        raise ValueError(f"image {digest}: the manifest under {inputs['blobs']} has other content")
    media_type = json.loads(manifest).get("mediaType") or oci.MANIFEST
    repo_name = url.split("/", 1)[1]
    aws.client("ecr").put_image(
        repositoryName=repo_name,
        imageManifest=manifest.decode(),
        imageManifestMediaType=media_type,
        imageDigest=digest,
    )
    image_uri = f"{url}@{digest}"
    return image_uri, {
        "image_uri": image_uri,
        "digest": digest,
        "uploaded": [],
        "uploaded_bytes": 0,
        "pushed": False,
        "push_skipped": PUSH_SKIPPED,
    }


def cluster(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    cluster_name = inputs.get("name") or name
    kwargs: dict[str, Any] = {"clusterName": cluster_name}
    if inputs.get("settings"):
        kwargs["settings"] = [{"name": s["name"], "value": s["value"]} for s in inputs["settings"]]
    kwargs.update(tags(inputs, "tags", key="key", value="value"))
    arn = aws.client("ecs").create_cluster(**kwargs)["cluster"]["clusterArn"]
    return arn, {"id": arn, "arn": arn, "name": cluster_name}


def _numbers(value: Any) -> Any:
    # Container definitions come as JSON text (whole numbers stay ints); nested inputs
    # come as floats.
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return number(value)


def task_definition(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "family", "containerDefinitions")
    containers = inputs["containerDefinitions"]
    if isinstance(containers, str):
        containers = json.loads(containers)
    fields = (
        "requiresCompatibilities",
        "networkMode",
        "cpu",
        "memory",
        "executionRoleArn",
        "taskRoleArn",
        "runtimePlatform",
        "volumes",
        "pidMode",
        "ipcMode",
    )
    kwargs: dict[str, Any] = {
        "family": inputs["family"],
        "containerDefinitions": containers,
        **_numbers(given(inputs, **{f: f for f in fields})),
    }
    kwargs.update(tags(inputs, "tags", key="key", value="value"))
    created = aws.client("ecs").register_task_definition(**kwargs)["taskDefinition"]
    arn = created["taskDefinitionArn"]
    return arn, {
        "arn": arn,
        "arnWithoutRevision": arn.rsplit(":", 1)[0],
        "revision": created["revision"],
    }


def service(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "cluster", "taskDefinition")
    service_name = inputs.get("name") or name
    kwargs: dict[str, Any] = {
        "cluster": inputs["cluster"],
        "serviceName": service_name,
        "taskDefinition": inputs["taskDefinition"],
        "desiredCount": number(inputs.get("desiredCount", 1)),
        **given(
            inputs,
            **{
                f: f
                for f in ("launchType", "platformVersion", "propagateTags", "schedulingStrategy")
            },
        ),
    }
    deployment: dict[str, Any] = {}
    if inputs.get("deploymentMinimumHealthyPercent") is not None:
        deployment["minimumHealthyPercent"] = number(inputs["deploymentMinimumHealthyPercent"])
    if inputs.get("deploymentMaximumPercent") is not None:
        deployment["maximumPercent"] = number(inputs["deploymentMaximumPercent"])
    breaker = inputs.get("deploymentCircuitBreaker")
    if breaker:
        deployment["deploymentCircuitBreaker"] = {
            "enable": bool(breaker.get("enable")),
            "rollback": bool(breaker.get("rollback")),
        }
    if deployment:
        kwargs["deploymentConfiguration"] = deployment
    network = inputs.get("networkConfiguration")
    if network:
        kwargs["networkConfiguration"] = {
            "awsvpcConfiguration": {
                "subnets": list(network.get("subnets") or []),
                "securityGroups": list(network.get("securityGroups") or []),
                "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED",
            }
        }
    if inputs.get("enableExecuteCommand") is not None:
        kwargs["enableExecuteCommand"] = bool(inputs["enableExecuteCommand"])
    if inputs.get("enableEcsManagedTags") is not None:
        kwargs["enableECSManagedTags"] = bool(inputs["enableEcsManagedTags"])
    kwargs.update(tags(inputs, "tags", key="key", value="value"))
    # waitForSteadyState is not waited for: no task ever runs in the emulator. The
    # rehearsal runs the service itself, from the image's layers (run.py, `service`).
    created = aws.client("ecs").create_service(**kwargs)["service"]
    arn = created["serviceArn"]
    return arn, {"id": arn, "name": service_name, "cluster": inputs["cluster"]}


def log_resource_policy(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "policyName", "policyDocument")
    text = json_document("policyDocument", inputs["policyDocument"])
    aws.client("logs").put_resource_policy(policyName=inputs["policyName"], policyDocument=text)
    return inputs["policyName"], {"policyName": inputs["policyName"]}


def log_metric_filter(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "logGroupName", "metricTransformation")
    filter_name = inputs.get("name") or name
    t = inputs["metricTransformation"]
    transformation: dict[str, Any] = {
        "metricName": t["name"],
        "metricNamespace": t["namespace"],
        "metricValue": t["value"],
    }
    if t.get("unit"):
        transformation["unit"] = t["unit"]
    if t.get("defaultValue") not in (None, ""):
        transformation["defaultValue"] = float(t["defaultValue"])
    aws.client("logs").put_metric_filter(
        logGroupName=inputs["logGroupName"],
        filterName=filter_name,
        filterPattern=inputs.get("pattern") or "",
        metricTransformations=[transformation],
    )
    return filter_name, {"name": filter_name}


RESOURCES: dict[str, Handler] = {
    "aws:ecr/repository:Repository": repository,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": lifecycle_policy,
    IMAGE_RELEASE: image_release,
    "aws:ecs/cluster:Cluster": cluster,
    "aws:ecs/taskDefinition:TaskDefinition": task_definition,
    "aws:ecs/service:Service": service,
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": log_resource_policy,
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": log_metric_filter,
}
INVOKES: dict[str, Invoke] = {}
