import sys

from backend.clients import AwsClients


def test_clients_are_lazy_cached_and_use_standard_retries(aws):
    clients = AwsClients(max_pool_connections=20)
    s3 = clients.get("s3")
    assert clients.get("s3") is s3
    config = s3.meta.config
    assert config.retries["mode"] == "standard"
    assert config.max_pool_connections == 20
    assert clients.get("dynamodb") is not s3


def test_constructing_the_clients_makes_no_client(monkeypatch):
    monkeypatch.delitem(sys.modules, "boto3", raising=False)
    AwsClients()
    assert "boto3" not in sys.modules


def test_one_secret_reader_per_arn_lives_with_the_clients(aws):
    clients = AwsClients()
    arn = aws.secretsmanager.create_secret(Name="k", SecretString="v")["ARN"]
    assert clients.secret_reader(arn) is clients.secret_reader(arn)
    assert clients.secret_reader(arn).get().reveal() == "v"


def test_every_client_comes_from_one_session(aws, monkeypatch):
    # A Session per client reloads botocore's data files each time: slower cold starts.
    import boto3.session

    made = []
    real = boto3.session.Session

    def counting_session(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", counting_session)
    clients = AwsClients()
    for service in ("s3", "dynamodb", "secretsmanager"):
        clients.get(service)
    assert made == [1]
