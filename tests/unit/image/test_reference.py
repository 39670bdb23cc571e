"""Image references as Docker spells them."""

from __future__ import annotations

import pytest

from lambda_pkg.image.reference import DOCKER_HUB, BadReference, parse_reference

DIGEST = "sha256:" + "0f" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python:3.12-slim", DOCKER_HUB, "library/python", "3.12-slim", None),
        (f"python@{DIGEST}", DOCKER_HUB, "library/python", None, DIGEST),
        (f"docker.io/library/python:3.12-slim@{DIGEST}", DOCKER_HUB, "library/python",
         "3.12-slim", DIGEST),
        ("bitnami/redis", DOCKER_HUB, "bitnami/redis", None, None),
        ("127.0.0.1:5000/ctb/strategy:dev", "127.0.0.1:5000", "ctb/strategy", "dev", None),
        ("localhost/app", "localhost", "app", None, None),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/cloud-trading-bot-dev-strategy:abc",
         "123456789012.dkr.ecr.us-east-1.amazonaws.com", "cloud-trading-bot-dev-strategy",
         "abc", None),
    ],
)  # fmt: skip
def test_parse(text, registry, repository, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry, repository, tag, digest,
    )  # fmt: skip
    assert ref.pinned is (digest is not None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("python@sha256:abc", "the digest must be sha256: and 64"),
        ("Python:3.12", "is not a repository name"),
        ("python:bad tag", "is not a valid tag"),
    ],
)
def test_bad_references_say_which_part(text, problem):
    with pytest.raises(BadReference, match=problem):
        parse_reference(text)


def test_only_loopback_registries_are_spoken_to_over_http():
    assert parse_reference("127.0.0.1:5000/a").base_url == "http://127.0.0.1:5000"
    assert parse_reference("localhost:5000/a").base_url == "http://localhost:5000"
    assert parse_reference("python").base_url == f"https://{DOCKER_HUB}"
    assert parse_reference("10.0.0.1:5000/a").base_url == "https://10.0.0.1:5000"
