"""Registry credentials for Amazon ECR: GetAuthorizationToken's user and password.

ECR speaks the registry API v2 with Basic authentication; the password is a token
valid for 12 hours, decoded from `authorizationToken` ("AWS:<password>", base64).
The deploy wiring decides where the AWS credentials come from: this function takes
a boto3 session (default: the environment's chain) and never stores or logs the token.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from lambda_pkg.errors import UserError
from lambda_pkg.image.registry import Credentials

_ECR_HOST = re.compile(
    r"^(?:https?://)?(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)"
    r"\.amazonaws\.com(?:\.cn)?/?$"
)


def is_ecr(registry: str) -> bool:
    return bool(_ECR_HOST.match(registry))


def ecr_credentials(
    registry: str, session: Any = None, endpoint_url: str | None = None
) -> Credentials:
    """Credentials for an ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`)."""
    match = _ECR_HOST.match(registry)
    if not match:
        raise UserError(
            f"{registry} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)"
        )
    if session is None:
        import boto3

        session = boto3.session.Session()
    client = session.client("ecr", region_name=match["region"], endpoint_url=endpoint_url)
    data = client.get_authorization_token(registryIds=[match["account"]])["authorizationData"]
    if not data:
        raise UserError(f"ECR returned no authorization data for {registry}")
    user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    return Credentials(user, password)
