"""A client for the registry HTTP API v2 (OCI distribution spec), over urllib.

Only what pushing and pulling one image needs: HEAD/GET a blob, a cross-repository
mount, a streamed upload (POST, one PATCH, PUT ?digest=, as docker push does; ECR
and Distribution both take it), GET/PUT a manifest. Authentication follows the
registry's 401 challenge: Basic with the given credentials (ECR's
GetAuthorizationToken user and password), or the Bearer token flow (Docker Hub,
Distribution with token auth), asking the realm for a token with the challenge's
scope. Redirects (blob downloads served from S3 or a CDN) are followed by hand
without the Authorization header, which the storage service would reject.

Why not a library: see docs/service.md ("The registry protocol").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import mmap
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import BinaryIO

from lambda_pkg.image import oci
from lambda_pkg.image.reference import Reference

TIMEOUT = 60
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(username={self.username!r}, password=<hidden>)"


class RegistryError(Exception):
    """An HTTP error from the registry, or no registry at all (status 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Registry:
    """One repository on one registry."""

    def __init__(self, ref: Reference, credentials: Credentials | None = None) -> None:
        self.ref = ref
        self.credentials = credentials
        self._auth: str | None = None  # the Authorization header that last worked

    # --- HTTP ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.ref.base_url}/v2/{self.ref.repository}/{path}"

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | memoryview | None = None,
        auth: bool = True,
    ) -> Response:
        # url is the reference's base_url (http only for loopback, else https) or a
        # Location the registry returned under it; no other scheme is ever built.
        request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
        if auth and self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(f"cannot reach {self.ref.registry}: {reason}") from None

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: bytes | memoryview | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Response:
        """Send, answering one auth challenge; follow redirects without credentials."""
        headers = dict(headers or {})
        for _attempt in range(2):
            resp = self._send(method, url, headers, body)
            if resp.status == 401 and self._authenticate(resp.headers.get("WWW-Authenticate", "")):
                continue
            break
        hops = 0
        while resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD") and hops < 5:
            url = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
            resp = self._send(method, url, headers, auth=False)
            hops += 1
        if resp.status not in ok:
            raise RegistryError(_describe(method, url, resp), resp.status)
        return resp

    def _authenticate(self, challenge: str) -> bool:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if not self.credentials or (self._auth and self._auth.startswith("Basic")):
                return False
            self._auth = "Basic " + _basic(self.credentials)
            return True
        if scheme.lower() != "bearer":
            return False
        fields = dict(_CHALLENGE.findall(params))
        realm = fields.pop("realm", "")
        if not realm:
            return False
        if not realm.startswith(("https://", f"{self.ref.base_url}/")):
            raise RegistryError(
                f"{self.ref.registry} sent a token realm that is not https: {realm}"
            )
        query = urllib.parse.urlencode(
            {k: v for k, v in fields.items() if k in ("service", "scope")}
        )
        headers = {"Authorization": "Basic " + _basic(self.credentials)} if self.credentials else {}
        # The scheme was checked just above (https, or this loopback registry's http).
        request = urllib.request.Request(f"{realm}?{query}", headers=headers)  # noqa: S310
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as resp:
                data = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryError(f"token request to {realm} failed: {exc}") from None
        token = data.get("token") or data.get("access_token")
        if not token or self._auth == f"Bearer {token}":
            return False
        self._auth = f"Bearer {token}"
        return True

    # --- blobs -----------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        resp = self.request("HEAD", self._url(f"blobs/{digest}"), ok=(200, 404))
        return resp.status == 200

    def mount_blob(self, digest: str, from_repository: str) -> bool:
        """Mount a blob another repository of this registry holds; False when the
        registry started an ordinary upload instead (it lacks the blob or mounting)."""
        query = urllib.parse.urlencode({"mount": digest, "from": from_repository})
        resp = self.request("POST", self._url(f"blobs/uploads/?{query}"), ok=(201, 202))
        if resp.status == 202 and (location := resp.headers.get("Location")):
            # Cancel the upload it opened instead; it would expire anyway.
            with contextlib.suppress(RegistryError):
                self.request("DELETE", urllib.parse.urljoin(self._url(""), location), ok=(204,))
        return resp.status == 201

    def upload_blob(self, digest: str, path: Path) -> None:
        start = self.request("POST", self._url("blobs/uploads/"), ok=(202,))
        location = urllib.parse.urljoin(self._url(""), start.headers.get("Location", ""))
        size = path.stat().st_size
        # A memory map goes to the socket in one sendall; a file object would go in
        # http.client's 8 KiB blocks.
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "Content-Range": f"0-{max(size - 1, 0)}"}  # fmt: skip
        if size == 0:  # an empty file cannot be mapped
            patch = self.request("PATCH", location, headers, body=b"", ok=(202, 204))
        else:
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                patch = self.request("PATCH", location, headers, body=memoryview(mm), ok=(202, 204))
        location = urllib.parse.urljoin(location, patch.headers.get("Location") or location)
        sep = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{sep}{urllib.parse.urlencode({'digest': digest})}",
            {"Content-Length": "0"},
            body=b"",
            ok=(201, 204),
        )

    def fetch_blob(self, digest: str, dest: BinaryIO) -> int:
        """Download a blob into dest, checking its digest; returns its size."""
        resp = self.request("GET", self._url(f"blobs/{digest}"))
        got = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        if got != digest:
            raise RegistryError(f"{self.ref.name}: blob {digest} arrived as {got}")
        dest.write(resp.body)
        return len(resp.body)

    # --- manifests -------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """(raw bytes, media type) of a manifest or index."""
        resp = self.request("GET", self._url(f"manifests/{reference}"), {"Accept": oci.ACCEPT})
        media = oci.media_type_of(resp.body, f"{self.ref.name}@{reference}",
                                  resp.headers.get("Content-Type"))  # fmt: skip
        return resp.body, media

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> None:
        self.request(
            "PUT", self._url(f"manifests/{reference}"), {"Content-Type": media_type},
            body=raw, ok=(201, 200),
        )  # fmt: skip


def _basic(credentials: Credentials | None) -> str:
    if credentials is None:
        return ""
    raw = f"{credentials.username}:{credentials.password}".encode()
    return base64.b64encode(raw).decode()


def _describe(method: str, url: str, resp: Response) -> str:
    detail = ""
    try:
        errors = json.loads(resp.body).get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError):
        detail = resp.body[:200].decode(errors="replace").strip()
    path = urllib.parse.urlsplit(url).path
    return f"{method} {path}: HTTP {resp.status}" + (f" ({detail})" if detail else "")
