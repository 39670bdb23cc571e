"""Lambda: the function from its pinned S3 object version, alias, permission,
async invoke config and the dependency layer."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from infra.rehearsal.clients import EmulatorClients, Handler, IdAndOutputs, Inputs, autoname
from infra.rehearsal.shapes import given, number, require, to_aws


def pinned_object(aws: EmulatorClients, bucket: str, key: str, version: str | None) -> bytes:
    """The exact bytes the function or layer is meant to run: the pinned version."""
    if not version:
        raise ValueError(
            f"s3ObjectVersion is not set for s3://{bucket}/{key}: the code must be pinned to "
            "the uploaded version, or an S3 update could leave the function on stale code"
        )
    body = aws.client("s3").get_object(Bucket=bucket, Key=key, VersionId=version)["Body"]
    return bytes(body.read())


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _check_hash(kind: str, declared: str | None, actual: str) -> None:
    if declared and declared != actual:
        raise ValueError(
            f"{kind} sourceCodeHash {declared} does not match the pinned object's "
            f"sha256 ({actual}): the program and the uploaded package disagree"
        )


def _code_location(
    aws: EmulatorClients, bucket: str, key: str, version: str, code: bytes
) -> dict[str, Any]:
    current = aws.client("s3").head_object(Bucket=bucket, Key=key)["VersionId"]
    if current == version:
        # What `pulumi up` sends: the S3 location with the pinned version.
        return {"S3Bucket": bucket, "S3Key": key, "S3ObjectVersion": version}
    # moto ignores S3ObjectVersion and would read the current version; AWS deploys
    # the pinned one, so hand the emulator the pinned bytes themselves.
    return {"ZipFile": code}


FunctionRequest = tuple[str, bytes, str, dict[str, Any]]


def function(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    request = function_request(aws, name, inputs)
    created = aws.client("lambda").create_function(**request[3])
    return function_deployed(aws, inputs, request, created)


def function_request(aws: EmulatorClients, name: str, inputs: Inputs) -> FunctionRequest:
    """(function name, pinned code, its base64 sha256, the CreateFunction arguments)."""
    require(inputs, "role", "runtime", "handler")
    if inputs.get("imageUri") or inputs.get("code"):
        raise ValueError("only S3-deployed functions are rehearsed (s3Bucket/s3Key)")
    require(inputs, "s3Bucket", "s3Key")
    fn_name = inputs.get("name") or autoname(name)
    bucket, key, version = inputs["s3Bucket"], inputs["s3Key"], inputs.get("s3ObjectVersion") or ""
    code = pinned_object(aws, bucket, key, version)
    sha = _b64sha(code)
    _check_hash("function", inputs.get("sourceCodeHash"), sha)
    kwargs: dict[str, Any] = {
        "FunctionName": fn_name,
        "Role": inputs["role"],
        "Runtime": inputs["runtime"],
        "Handler": inputs["handler"],
        "Code": _code_location(aws, bucket, key, version, code),
        "Publish": bool(inputs.get("publish")),
        "PackageType": "Zip",
        **to_aws(
            given(
                inputs,
                Description="description",
                Timeout="timeout",
                MemorySize="memorySize",
                Architectures="architectures",
                Layers="layers",
                KMSKeyArn="kmsKeyArn",
                TracingConfig="tracingConfig",
                LoggingConfig="loggingConfig",
                DeadLetterConfig="deadLetterConfig",
                EphemeralStorage="ephemeralStorage",
            )
        ),
    }
    variables = (inputs.get("environment") or {}).get("variables")
    if variables:
        # Verbatim: variable names are data, not API fields to re-case.
        kwargs["Environment"] = {"Variables": {k: str(v) for k, v in variables.items()}}
    if inputs.get("tags"):
        kwargs["Tags"] = dict(inputs["tags"])
    return fn_name, code, sha, kwargs


def function_deployed(
    aws: EmulatorClients,
    inputs: Inputs,
    request: FunctionRequest,
    answer: dict[str, Any],
    *,
    publish: bool = False,
) -> IdAndOutputs:
    """After CreateFunction or UpdateFunctionCode (`answer`): the code taken must be the
    pinned object; then the new version (`publish`: an update's), the reserved concurrency
    (none or a negative value: unreserved), and what the provider reports for the
    function, its latest published version among it."""
    fn_name, code, sha, _ = request
    if answer["CodeSha256"] != sha:
        raise ValueError(f"CodeSha256 {answer['CodeSha256']} != pinned object's {sha}")
    lam = aws.client("lambda")
    if publish:
        lam.publish_version(FunctionName=fn_name)
    reserved = inputs.get("reservedConcurrentExecutions")
    if reserved is not None and number(reserved) >= 0:
        lam.put_function_concurrency(
            FunctionName=fn_name, ReservedConcurrentExecutions=number(reserved)
        )
    elif "ReservedConcurrentExecutions" in lam.get_function_concurrency(FunctionName=fn_name):
        lam.delete_function_concurrency(FunctionName=fn_name)
    arn = lam.get_function(FunctionName=fn_name)["Configuration"]["FunctionArn"]
    version_out = lam.list_versions_by_function(FunctionName=fn_name)["Versions"][-1]["Version"]
    invoke_prefix = f"arn:aws:apigateway:{aws.region}:lambda:path/2015-03-31/functions"
    return fn_name, {
        "name": fn_name,
        "arn": arn,
        "version": version_out,
        "qualifiedArn": f"{arn}:{version_out}",
        "invokeArn": f"{invoke_prefix}/{arn}/invocations",
        "qualifiedInvokeArn": f"{invoke_prefix}/{arn}:{version_out}/invocations",
        "codeSha256": sha,
        "sourceCodeHash": inputs.get("sourceCodeHash") or sha,
        "sourceCodeSize": float(len(code)),
        "lastModified": answer.get("LastModified", ""),
    }


def alias(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    return put_alias(aws.client("lambda").create_alias, inputs.get("name") or name, inputs)


def put_alias(put: Callable[..., Any], alias_name: str, inputs: Inputs) -> IdAndOutputs:
    """CreateAlias or UpdateAlias (`put`) with the alias's inputs."""
    require(inputs, "functionName", "functionVersion")
    kwargs: dict[str, Any] = {
        "FunctionName": inputs["functionName"],
        "Name": alias_name,
        "FunctionVersion": str(inputs["functionVersion"]),
        # Always sent: an update that drops the description clears it.
        "Description": inputs.get("description") or "",
    }
    if inputs.get("routingConfig"):
        kwargs["RoutingConfig"] = to_aws(inputs["routingConfig"])
    arn = put(**kwargs)["AliasArn"]
    return arn, {"name": alias_name, "arn": arn, "invokeArn": arn}


def permission(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "action", "function", "principal")
    statement_id = inputs.get("statementId") or autoname(inputs.get("statementIdPrefix") or name)
    kwargs: dict[str, Any] = {
        "FunctionName": inputs["function"],
        "StatementId": statement_id,
        "Action": inputs["action"],
        "Principal": inputs["principal"],
        **given(
            inputs,
            SourceArn="sourceArn",
            SourceAccount="sourceAccount",
            Qualifier="qualifier",
            EventSourceToken="eventSourceToken",
            PrincipalOrgID="principalOrgId",
            FunctionUrlAuthType="functionUrlAuthType",
        ),
    }
    aws.client("lambda").add_permission(**kwargs)
    return statement_id, {"statementId": statement_id}


def event_invoke_config(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "functionName")
    kwargs = {
        "FunctionName": inputs["functionName"],
        **to_aws(
            given(
                inputs,
                Qualifier="qualifier",
                MaximumRetryAttempts="maximumRetryAttempts",
                MaximumEventAgeInSeconds="maximumEventAgeInSeconds",
                DestinationConfig="destinationConfig",
            )
        ),
    }
    aws.client("lambda").put_function_event_invoke_config(**kwargs)
    qualifier = f":{inputs['qualifier']}" if inputs.get("qualifier") else ""
    return inputs["functionName"] + qualifier, {}


def layer_version(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "layerName", "s3Bucket", "s3Key")
    code = pinned_object(aws, inputs["s3Bucket"], inputs["s3Key"], inputs.get("s3ObjectVersion"))
    sha = _b64sha(code)
    _check_hash("layer", inputs.get("sourceCodeHash"), sha)
    kwargs: dict[str, Any] = {
        "LayerName": inputs["layerName"],
        # The pinned bytes, for the same reason as the function (moto ignores the version).
        "Content": {"ZipFile": code},
        **given(
            inputs,
            Description="description",
            CompatibleRuntimes="compatibleRuntimes",
            CompatibleArchitectures="compatibleArchitectures",
            LicenseInfo="licenseInfo",
        ),
    }
    published = aws.client("lambda").publish_layer_version(**kwargs)
    arn = published["LayerVersionArn"]
    return arn, {
        "arn": arn,
        "layerArn": published["LayerArn"],
        "version": str(published["Version"]),
        "codeSha256": sha,
        "sourceCodeHash": inputs.get("sourceCodeHash") or sha,
        "sourceCodeSize": float(len(code)),
    }


RESOURCES: dict[str, Handler] = {
    "aws:lambda/function:Function": function,
    "aws:lambda/alias:Alias": alias,
    "aws:lambda/permission:Permission": permission,
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": event_invoke_config,
    "aws:lambda/layerVersion:LayerVersion": layer_version,
}
