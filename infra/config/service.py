"""The strategy service's infrastructure keys: Fargate size, base image, networking,
and the shape of the broker credentials (infra/service.py deploys the service).
"""

from __future__ import annotations

import json
import re
from typing import Any

from infra.config.rules import Invalid, integer, json_value, matches, text

# Fargate's valid CPU units -> memory (MiB) choices, from the ECS task definition
# parameters page (Linux; 8 and 16 vCPU need platform version 1.4.0, the default).
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# How the task reaches the broker, S3 and DynamoDB. Documented in docs/infra.md.
SERVICE_NETWORKS = {
    "private-nat": "private subnets in a new VPC, outbound through a NAT gateway",
    "private-endpoints": "private subnets in a new VPC, AWS services through VPC endpoints, "
    "no internet (the paper broker only)",
    "public-ip": "public subnets in a new VPC, the task has a public IP, no inbound rule",
    "subnets": "existing subnets named by serviceSubnetIds (they must reach the internet)",
}
# A network that cannot reach the internet: no Alpaca broker behind it.
NO_INTERNET = ("private-endpoints",)
# awsvpc networking takes at most 16 subnets.
MAX_SUBNETS = 16

_SUBNET_RE = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
# The OCI distribution spec's reference grammar, pinned: [registry/]repository[:tag]@sha256:hex
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?/)"
_IMAGE_RE = re.compile(
    rf"(?P<name>{_REGISTRY}?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"@sha256:[a-f0-9]{64}",
    re.ASCII,
)
_PYTHON_TAG_RE = re.compile(r"3\.([0-9]+)(?:[.-].*)?", re.ASCII)


def task_cpu(value: Any) -> int:
    allowed = "Fargate CPU units: one of " + ", ".join(str(c) for c in FARGATE_MEMORY)
    cpu = integer(value, 256, 16384, allowed)
    if cpu not in FARGATE_MEMORY:
        raise Invalid(allowed)
    return cpu


def task_memory(value: Any) -> int:
    return integer(value, 512, 122880, "Fargate memory in MiB, from 512 to 122880")


def memory_problem(cpu: int, memory: int) -> str | None:
    """What is wrong with a (cpu, memory) pair (completing "must be ..."); None if it fits."""
    choices = FARGATE_MEMORY[cpu]
    if memory in choices:
        return None
    if len(choices) <= 4:
        listed = ", ".join(str(m) for m in choices)
    else:
        listed = f"{choices[0]} to {choices[-1]} in steps of {choices[1] - choices[0]}"
    return f"one of Fargate's sizes for taskCpu {cpu}: {listed}"


def base_image(value: Any) -> str | None:
    """Empty means the image builder's own pinned python:<version>-slim."""
    if value is None or value == "":
        return None
    allowed = (
        "empty, or an image pinned by digest: [registry/]repository[:tag]@sha256:<64 hex>, "
        "e.g. python:3.12-slim@sha256:…"
    )
    image = text(value, allowed, max_len=512)
    if "@" not in image:
        raise Invalid(f"{allowed} (a tag alone can move to other bytes: add @sha256:)")
    if re.search(r"@sha256:[A-Fa-f0-9]{64}$", image, re.ASCII) and not re.search(
        r"@sha256:[a-f0-9]{64}$", image, re.ASCII
    ):
        raise Invalid(f"{allowed} (the digest is lowercase hex)")
    return matches(image, _IMAGE_RE, allowed, max_len=512)


def image_python_problem(image: str, runtime: str) -> str | None:
    """An official-style `python:3.X...` base whose Python is not the runtime's: the
    service's wheels are built for the runtime's Python, so they would not import."""
    found = _IMAGE_RE.fullmatch(image)
    if found is None or found.group("name").rsplit("/", 1)[-1] != "python" or not found["tag"]:
        return None
    version = _PYTHON_TAG_RE.fullmatch(found["tag"])
    want = runtime.removeprefix("python3.")
    if version is None or version.group(1) == want:
        return None
    return (
        f"an image whose Python is the runtime's ({runtime}): this one runs Python "
        f"3.{version.group(1)}, and the service's wheels are built for {runtime}"
    )


def network(value: Any) -> str:
    allowed = "one of " + ", ".join(SERVICE_NETWORKS)
    choice = text(value, allowed, max_len=64)
    if choice not in SERVICE_NETWORKS:
        raise Invalid(allowed)
    return choice


def subnet_ids(value: Any) -> tuple[str, ...]:
    allowed = f'a list of up to {MAX_SUBNETS} distinct subnet ids, e.g. ["subnet-0123abcd"]'
    if value is None or value == "":
        return ()
    items = json_value(value, list, allowed)
    if len(items) > MAX_SUBNETS:
        raise Invalid(f"{allowed} (this has {len(items)})")
    for item in items:
        matches(item, _SUBNET_RE, f"{allowed} ({item!r} is not a subnet id)", max_len=64)
    if len(set(items)) != len(items):
        raise Invalid(f"{allowed} (one is listed twice)")
    return tuple(items)


# The broker secret's value (docs/CONTRACTS.md section 10), as the service reads it.
BROKER_CREDENTIAL_FIELDS = ("key_id", "secret_key")
ALPACA_MODES = ("alpaca-paper", "alpaca-live")


_CREDENTIALS_SHAPE = 'a JSON object {"key_id": "...", "secret_key": "..."}'


def _credentials_object(value: Any) -> dict[str, Any] | str:
    """The decoded object, or what is wrong with it (never quoting the value: the JSON
    decoder's own message would)."""
    if not isinstance(value, str):
        return "(a string)"
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return "; this is not JSON"
    return doc if isinstance(doc, dict) else "; this is JSON but not an object"


def broker_credentials_problem(value: Any) -> str | None:
    """What is wrong with a brokerCredentials value (completing "must be ..."), naming the
    field but never showing the value; None if it is fine."""
    doc = _credentials_object(value)
    if isinstance(doc, str):
        return f"{_CREDENTIALS_SHAPE}{' ' if doc.startswith('(') else ''}{doc}"
    extra = sorted(set(doc) - set(BROKER_CREDENTIAL_FIELDS))
    if extra:
        # Field names only: a key name is not a secret, but keep it short.
        return f"{_CREDENTIALS_SHAPE}; it has other keys: {', '.join(ascii(k)[:40] for k in extra)}"
    for name in BROKER_CREDENTIAL_FIELDS:
        item = doc.get(name)
        if not isinstance(item, str) or not item:
            return f"{_CREDENTIALS_SHAPE}; `{name}` is missing or not a non-empty string"
        if item != item.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in item):
            return (
                f"{_CREDENTIALS_SHAPE}; `{name}` has whitespace or a control character "
                "around or in it"
            )
    return None
