import pytest
from botocore.exceptions import ClientError

from backend.secrets import Secret, SecretError, SecretReader


class CountingClient:
    def __init__(self, real):
        self.real = real
        self.calls = 0

    def get_secret_value(self, **kwargs):
        self.calls += 1
        return self.real.get_secret_value(**kwargs)


def test_value_is_read_once_per_container(aws):
    arn = aws.secretsmanager.create_secret(Name="ctb/dev/key", SecretString="sk-123")["ARN"]
    client = CountingClient(aws.secretsmanager)
    reader = SecretReader(client=lambda: client, arn=arn)
    assert reader.get().reveal() == "sk-123"
    assert reader.get().reveal() == "sk-123"
    assert client.calls == 1


def test_secret_without_a_value_is_none_not_a_crash(aws):
    # Pulumi creates the secret; its value is set only if marketDataApiKey is configured.
    arn = aws.secretsmanager.create_secret(Name="ctb/dev/empty")["ARN"]
    assert SecretReader(client=lambda: aws.secretsmanager, arn=arn).get() is None


def test_a_value_set_later_is_picked_up_by_the_same_container(aws):
    # GIVEN a warm container that has seen the secret without a value
    arn = aws.secretsmanager.create_secret(Name="ctb/dev/later")["ARN"]
    reader = SecretReader(client=lambda: aws.secretsmanager, arn=arn)
    assert reader.get() is None
    # WHEN the operator sets the key (pulumi up adds a version; no new container starts)
    aws.secretsmanager.put_secret_value(SecretId=arn, SecretString="sk-456")
    # THEN the next read finds it
    assert reader.get().reveal() == "sk-456"


def test_other_errors_name_the_arn_and_code_only():
    class Denied:
        def get_secret_value(self, **kwargs):
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue"
            )

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf"
    with pytest.raises(SecretError, match=f"cannot read secret {arn}: AccessDeniedException"):
        SecretReader(client=Denied, arn=arn).get()


def test_secret_hides_its_value_in_repr_and_str():
    secret = Secret("sk-live-abc")
    assert "sk-live-abc" not in repr(secret)
    assert "sk-live-abc" not in str(secret)
    assert f"{secret}" == "Secret(***)"


def test_no_client_is_made_until_the_value_is_needed():
    made = []
    SecretReader(client=lambda: made.append(1), arn="arn")
    assert made == []
