"""The Invoke request as Lambda reads it: function name forms, qualifiers, invocation
and log types, payload checks; and its errors in the shape botocore parses."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import botocore.session
import pytest
from botocore.parsers import RestJSONParser

from localcloud.invoke_api import (
    ASYNC_PAYLOAD_LIMIT,
    SYNC_PAYLOAD_LIMIT,
    LambdaApiError,
    parse_invoke,
    split_function_name,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fn", ("fn", None)),
        ("fn:live", ("fn", "live")),
        ("fn:$LATEST", ("fn", "$LATEST")),
        (ARN, ("fn", None)),
        (f"{ARN}:7", ("fn", "7")),
        ("123456789012:function:fn:live", ("fn", "live")),
    ],
)
def test_every_function_name_form_lambda_accepts(raw, expected):
    assert split_function_name(raw) == expected


def test_a_malformed_name_is_a_validation_error():
    with pytest.raises(LambdaApiError) as err:
        split_function_name("no spaces allowed")
    assert err.value.status == 400 and err.value.code == "ValidationException"


def test_the_qualifier_comes_from_the_name_or_the_query():
    path = f"/2015-03-31/functions/{quote(ARN + ':3', safe='')}/invocations"
    assert parse_invoke(path, {}, b"{}").qualifier == "3"
    req = parse_invoke("/2015-03-31/functions/fn/invocations?Qualifier=live", {}, b"{}")
    assert (req.function, req.qualifier, req.invoked_qualifier) == ("fn", "live", "live")
    assert (
        parse_invoke("/2015-03-31/functions/fn/invocations", {}, b"{}").invoked_qualifier
        == "$LATEST"
    )


def test_a_qualifier_in_both_places_must_agree():
    with pytest.raises(LambdaApiError, match="does not match"):
        parse_invoke("/2015-03-31/functions/fn:1/invocations?Qualifier=2", {}, b"{}")


def test_other_paths_are_not_invoke():
    assert parse_invoke("/2015-03-31/functions/fn", {}, b"") is None
    assert parse_invoke("/bucket/2015-03-31/functions/fn/invocations", {}, b"") is None


def test_headers_choose_the_invocation_type_and_the_log_tail():
    req = parse_invoke(
        "/2015-03-31/functions/fn/invocations",
        {"X-Amz-Invocation-Type": "Event", "X-Amz-Log-Type": "Tail"},
        b'{"a": 1}',
    )
    assert req.invocation_type == "Event" and req.tail_logs and req.payload == b'{"a": 1}'
    with pytest.raises(LambdaApiError, match="InvocationType"):
        parse_invoke(
            "/2015-03-31/functions/fn/invocations", {"X-Amz-Invocation-Type": "Later"}, b""
        )


def test_an_empty_payload_is_an_empty_event():
    assert parse_invoke("/2015-03-31/functions/fn/invocations", {}, b"").payload == b"{}"


def test_a_payload_that_is_not_json_is_refused_before_running():
    with pytest.raises(LambdaApiError) as err:
        parse_invoke("/2015-03-31/functions/fn/invocations", {}, b"{not json")
    assert err.value.code == "InvalidRequestContentException"


@pytest.mark.parametrize(
    ("kind", "limit"), [("RequestResponse", SYNC_PAYLOAD_LIMIT), ("Event", ASYNC_PAYLOAD_LIMIT)]
)
def test_payload_size_limits(kind, limit):
    body = b'"' + b"x" * (limit - 1) + b'"'
    with pytest.raises(LambdaApiError) as err:
        parse_invoke("/2015-03-31/functions/fn/invocations", {"X-Amz-Invocation-Type": kind}, body)
    assert err.value.status == 413 and err.value.code == "RequestTooLargeException"


def test_client_context_must_be_base64_json():
    good = base64.b64encode(json.dumps({"custom": {"a": 1}}).encode()).decode()
    req = parse_invoke("/2015-03-31/functions/fn/invocations", {"X-Amz-Client-Context": good}, b"")
    assert req.client_context == good
    with pytest.raises(LambdaApiError, match="base64"):
        parse_invoke("/2015-03-31/functions/fn/invocations", {"X-Amz-Client-Context": "%%"}, b"")


def test_errors_parse_in_botocore_as_the_aws_exception():
    # GIVEN the answer for a missing function
    answer = LambdaApiError(404, "ResourceNotFoundException", "Function not found: x").answer("rid")
    # WHEN botocore's rest-json parser reads it, as the SDK and the CLI do
    model = botocore.session.get_session().get_service_model("lambda").operation_model("Invoke")
    parsed = RestJSONParser().parse(
        {
            "status_code": answer.status,
            # As received: HTTP header names are case-insensitive (botocore lowercases).
            "headers": {name.lower(): value for name, value in answer.headers.items()},
            "body": answer.body,
        },
        model.output_shape,
    )
    # THEN it is the same error code and message as from AWS
    assert parsed["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": "Function not found: x",
    }
