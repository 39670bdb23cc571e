"""Image references: `[registry/]repository[:tag][@sha256:<hex>]`, as Docker spells them.

A base image for a real deploy must be pinned by digest: a tag can be moved to other
bytes at any time, and then the same inputs would no longer give the same image.
Docker Hub's short names are expanded the way every client does (`python` is
`registry-1.docker.io/library/python`). A registry on the loopback address is spoken
to over plain HTTP, as Docker and containerd do for `localhost`; every other
registry over HTTPS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "registry-1.docker.io"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class BadReference(ValueError):
    """The reference cannot be parsed; the message says which part is wrong."""


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str  # e.g. "library/python"
    tag: str | None = None
    digest: str | None = None

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def insecure(self) -> bool:
        """Plain HTTP: only for a registry on this machine's loopback address."""
        return self.registry.rsplit(":", 1)[0] in _LOOPBACK or self.registry in _LOOPBACK

    @property
    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.registry}"

    @property
    def name(self) -> str:
        """registry/repository, no tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse a reference; raises BadReference naming the part that is wrong."""
    rest, _, digest = text.strip().partition("@")
    if digest and not _DIGEST.match(digest):
        raise BadReference(f"{text!r}: the digest must be sha256: and 64 lowercase hex digits")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    if registry in ("docker.io", "index.docker.io"):
        registry = DOCKER_HUB
    tag = None
    last_slash = path.rfind("/")
    if ":" in path[last_slash + 1 :]:
        path, _, tag = path.rpartition(":")
        if not _TAG.match(tag):
            raise BadReference(f"{text!r}: {tag!r} is not a valid tag")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise BadReference(
            f"{text!r}: {path!r} is not a repository name (lowercase letters, digits, . _ - /)"
        )
    return Reference(registry, path, tag, digest or None)
