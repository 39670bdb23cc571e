"""infra.rehearsal.localbucket: the bucket for the local Pulumi stack, configured as
its owner would (minus the policy moto cannot evaluate), and only ever locally."""

from __future__ import annotations

from infra.rehearsal.localbucket import create_bucket, main


def test_bucket_gets_the_owner_settings_and_no_policy(aws):
    assert create_bucket(aws, "ctb-local-bucket") is True
    s3 = aws.client("s3")
    assert s3.get_bucket_versioning(Bucket="ctb-local-bucket")["Status"] == "Enabled"
    pab = s3.get_public_access_block(Bucket="ctb-local-bucket")["PublicAccessBlockConfiguration"]
    assert set(pab.values()) == {True}
    rules = s3.get_bucket_ownership_controls(Bucket="ctb-local-bucket")["OwnershipControls"]
    assert rules["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # A write still works afterwards (it would not under moto with the TLS-only policy).
    assert s3.put_object(Bucket="ctb-local-bucket", Key="lambda/local/x", Body=b"x")["VersionId"]


def test_running_it_twice_is_harmless(aws):
    assert create_bucket(aws, "ctb-local-bucket") is True
    assert create_bucket(aws, "ctb-local-bucket") is False


def test_refuses_an_endpoint_that_is_not_local(capsys):
    assert main(["--endpoint", "https://s3.amazonaws.com"]) == 2
    assert "is not a local emulator" in capsys.readouterr().err


def test_no_emulator_listening_is_one_line(capsys):
    from localcloud.emulator import free_port

    assert main(["--endpoint", f"http://127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert "is moto_server running there?" in err
    assert "Traceback" not in err
