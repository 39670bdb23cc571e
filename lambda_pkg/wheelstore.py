"""Downloaded wheels, kept by content, so a locked wheel is downloaded once.

The Lambda package and the service image download the same wheels for the same target
(the service's lock is made with the Lambda's as constraints, so every shared pin has
the same version and hashes): numpy, pandas, lxml and the rest. The store keeps each
wheel pip saved, and the next build for that target takes it from here instead of the
index. Layout under the root (`<cache>/wheels`, or `LAMBDA_PKG_WHEEL_STORE` to share
one store between checkouts):

  sha256/<hex>/<filename>   a wheel, named by the sha256 of its bytes, which is one of
                            its pin's hashes in the lock
  chosen/<key>              "<sha256> <filename>": the file pip chose for one pin on one
                            target. The key covers what decides pip's choice (Python
                            version, platform tags, index options) and the pin's name,
                            version and hashes, so a wheel is reused only where pip
                            itself would pick that very file.

Every wheel is hashed again when it is taken: bytes that do not match (a truncated
copy, a disk error, a hand edit) are deleted and the pin is downloaded again. Nothing
from a wheel runs; the builder reads it as untrusted input (wheels.py) either way.
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.artifact import sha256_file, sha256_json, write_bytes_atomic
from lambda_pkg.errors import UserError
from lambda_pkg.lock import Pin
from lambda_pkg.wheels import canonical, parse_name

STORE_ENV = "LAMBDA_PKG_WHEEL_STORE"


def store_root(cache_dir: Path) -> Path:
    return Path(os.environ.get(STORE_ENV) or cache_dir / "wheels").absolute()


@dataclass(frozen=True)
class WheelStore:
    root: Path
    # What decides which file pip picks for a pin: the same target gets the same file.
    target: tuple[object, ...]

    @property
    def lock_path(self) -> Path:
        """Held while a build takes wheels and downloads the rest: a concurrent build of
        the same target then finds what this one downloaded instead of fetching it too."""
        return self.root / "locks" / f"{sha256_json(self.target)[:32]}.lock"

    def _chosen(self, pin: Pin) -> Path:
        data = [self.target, pin.name, pin.version, sorted(pin.hashes)]
        return self.root / "chosen" / sha256_json(data)

    def _blob(self, sha256: str, filename: str) -> Path:
        return self.root / "sha256" / sha256 / filename

    def take(self, pin: Pin, dest: Path) -> Path | None:
        """The pin's wheel placed in `dest`, or None (never stored, or its bytes no
        longer match: then it is deleted, to be downloaded again)."""
        try:
            sha256, _, filename = self._chosen(pin).read_text(encoding="utf-8").partition(" ")
        except OSError:
            return None
        if sha256 not in pin.hashes or "/" in filename or filename.startswith("."):
            return None  # not this pin's file: the record is stale or damaged
        blob = self._blob(sha256, filename)
        try:
            if sha256_file(blob) != sha256:
                blob.unlink()
                return None
            dest.mkdir(parents=True, exist_ok=True)
            # A copy, not a link: the store's file must never change under a build.
            return Path(shutil.copyfile(blob, dest / filename))
        except OSError:
            return None

    def keep(self, pins: dict[str, Pin], wheel: Path) -> None:
        """Store a wheel pip just downloaded (and verified) for one of `pins`."""
        try:
            name, version = parse_name(wheel.name)
        except UserError:
            return  # not a wheel: the build refuses it
        pin = pins.get(canonical(name))
        sha256 = sha256_file(wheel)
        if pin is None or pin.version != version or sha256 not in pin.hashes:
            return  # not a locked file: the build refuses it, the store never holds it
        blob = self._blob(sha256, wheel.name)
        if not blob.is_file():
            write_bytes_atomic(blob, wheel.read_bytes())
        write_bytes_atomic(self._chosen(pin), f"{sha256} {wheel.name}".encode())
