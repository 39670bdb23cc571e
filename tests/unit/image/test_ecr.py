"""ECR credentials come from GetAuthorizationToken, for the registry's own account and region."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from lambda_pkg.errors import UserError
from lambda_pkg.image.ecr import ecr_credentials, is_ecr

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@mock_aws
def test_the_token_is_decoded_into_user_and_password():
    creds = ecr_credentials(REGISTRY, boto3.session.Session())
    assert creds.username == "AWS"
    assert creds.password == "123456789012-auth-token"  # moto's token for that account
    assert "auth-token" not in repr(creds)  # never printed


def test_a_registry_that_is_not_ecr_is_refused():
    assert not is_ecr("127.0.0.1:5000")
    assert is_ecr(REGISTRY) and is_ecr("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")
    with pytest.raises(UserError, match=r"127.0.0.1:5000 is not an ECR registry"):
        ecr_credentials("127.0.0.1:5000")
