"""Checks that run before anything is uploaded: native libraries and secrets.

ELF: every shared object must be built for the target machine (e_machine) and must
not need a newer glibc than the runtime has. The glibc need is read from the
.gnu.version_r section (the version references the dynamic linker checks at load
time), found through the section headers, or through the DT_VERNEED entry of the
dynamic segment when section headers were stripped. Scanning the whole file for
"GLIBC_2.x" strings would be simpler but can over-report (any string mentioning
a version) and miss nothing the linker would check, so the precise table is used.

Secrets: every file of the package, the project's and the dependencies' alike, text
or binary, in any encoding, is scanned for AWS access key ids, private key blocks (a
header *with a body*) and `aws_secret_access_key` *with a value*; a `.env` file
anywhere in the package is refused by name. A hit on a line that says
`pragma: allowlist secret` is a declared false positive and passes; AWS's published
`...EXAMPLE` keys never count.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lambda_pkg.errors import UserError, and_more
from lambda_pkg.platforms import ELF_MACHINE, glibc_ceiling

SHT_GNU_VERNEED = 0x6FFFFFFE
DT_STRTAB, DT_VERNEED, DT_VERNEEDNUM = 5, 0x6FFFFFFE, 0x6FFFFFFF
PT_LOAD, PT_DYNAMIC = 1, 2
_MAX_VERNEED = 4096
_GLIBC = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")
MACHINE_NAMES = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "arm", 8: "mips", 21: "ppc64"}


# An ELF image in memory or mapped from a file (verify maps large libraries: mmap).
Buffer = bytes | mmap.mmap


class ElfError(ValueError):
    pass


@dataclass(frozen=True)
class ElfInfo:
    machine: int
    glibc: tuple[int, int] | None  # the highest GLIBC_x.y needed, if any


def is_shared_object(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return bool(re.search(r"\.so(\.\d+)*$", base))


def parse_elf(data: Buffer) -> ElfInfo:
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file (built for another OS?)")
    if len(data) < 64 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError("truncated or invalid ELF header")
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    machine = struct.unpack_from(end + "H", data, 18)[0]
    try:
        names = _verneed_names(data, is64, end)
    except (struct.error, IndexError):
        raise ElfError("truncated ELF tables") from None
    versions = [(int(m[1]), int(m[2])) for n in names if (m := _GLIBC.match(n))]
    return ElfInfo(machine=machine, glibc=max(versions) if versions else None)


def _cstr(data: Buffer, offset: int) -> str:
    end = data.find(b"\0", offset)
    if end < 0:
        raise ElfError("truncated ELF string table")
    return bytes(data[offset:end]).decode("ascii", "replace")


def _walk_verneed(data: Buffer, end: str, offset: int, count: int, strtab: int) -> list[str]:
    names: list[str] = []
    # Counts come from the file: capped, so a hostile table cannot loop for hours.
    for _ in range(min(count, _MAX_VERNEED)):
        _, cnt, _file, aux, nxt = struct.unpack_from(end + "HHIII", data, offset)
        a = offset + aux
        for _ in range(min(cnt, _MAX_VERNEED)):
            _hash, _flags, _other, name, anext = struct.unpack_from(end + "IHHII", data, a)
            names.append(_cstr(data, strtab + name))
            if not anext:
                break
            a += anext
        if not nxt:
            break
        offset += nxt
    return names


def _verneed_names(data: Buffer, is64: bool, end: str) -> list[str]:
    if is64:
        phoff, shoff = struct.unpack_from(end + "QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 0x36)
        sh_fmt, ph_fmt, dyn_fmt = end + "IIQQQQIIQQ", end + "IIQQQQQQ", end + "qQ"
    else:
        phoff, shoff = struct.unpack_from(end + "II", data, 0x1C)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 0x2A)
        sh_fmt, ph_fmt, dyn_fmt = end + "IIIIIIIIII", end + "IIIIIIII", end + "iI"
    if shoff and shnum:
        sections = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]
        for sec in sections:
            # (name, type, flags, addr, offset, size, link, info, align, entsize)
            if sec[1] == SHT_GNU_VERNEED:
                strtab = sections[sec[6]][4]
                return _walk_verneed(data, end, sec[4], sec[7], strtab)
        return []
    # No section headers: follow the dynamic segment instead.
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        ph = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
        ptype, offset, vaddr, filesz = (
            (int(ph[0]), int(ph[2]), int(ph[3]), int(ph[5]))
            if is64
            else (int(ph[0]), int(ph[1]), int(ph[2]), int(ph[4]))
        )
        if ptype == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif ptype == PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return []
    tags: dict[int, int] = {}
    step = struct.calcsize(dyn_fmt)
    for pos in range(dynamic[0], dynamic[0] + dynamic[1], step):
        tag, val = struct.unpack_from(dyn_fmt, data, pos)
        if tag == 0:
            break
        tags[tag] = val

    def to_offset(addr: int) -> int:
        for vaddr, offset, filesz in loads:
            if vaddr <= addr < vaddr + filesz:
                return offset + addr - vaddr
        raise ElfError("dynamic table points outside the file")

    if DT_VERNEED not in tags or DT_STRTAB not in tags:
        return []
    return _walk_verneed(
        data,
        end,
        to_offset(tags[DT_VERNEED]),
        tags.get(DT_VERNEEDNUM, 0),
        to_offset(tags[DT_STRTAB]),
    )


def audit_elf(name: str, data: Buffer, *, runtime: str, architecture: str) -> str | None:
    """A one-line problem for this shared object, or None when it fits the target."""
    try:
        info = parse_elf(data)
    except ElfError as exc:
        return f"{name}: {exc}"
    want = ELF_MACHINE[architecture]
    if info.machine != want:
        got = MACHINE_NAMES.get(info.machine, f"e_machine {info.machine}")
        return f"{name}: built for {got}, but the target is {architecture}"
    ceiling = glibc_ceiling(runtime)
    if info.glibc and info.glibc > ceiling:
        need, have = ".".join(map(str, info.glibc)), ".".join(map(str, ceiling))
        return f"{name}: needs GLIBC_{need}, but {runtime} has glibc {have}"
    return None


# --- secrets -----------------------------------------------------------------------

# (kind, pattern, anchors, offsets). Every match starts at one of `offsets` bytes before
# an anchor (lower-cased, found in the lower-cased file), so the pattern is only tried
# there: bytes' own search finds the anchors at memory speed, where letting the regex
# engine try every offset read 9-20 MB/s (verify spent 27 s on a 250 MB package; the
# dependency step 10 s of a 22 s cold build, mostly in numpy's and pandas' binaries).
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[bytes], tuple[bytes, ...], tuple[int, ...]], ...] = (
    (
        "an AWS access key id",
        re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
        (b"akia", b"asia"),
        (0,),
    ),
    # A PEM header on its own is a constant any key-handling code may hold (a parser,
    # a format check); a key block has a body: base64 (or an encrypted key's
    # Proc-Type header) follows, on the next line or after a literal \n in a string.
    (
        "a private key block",
        re.compile(
            rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            rb"(?:\s|\\[rn]|[\"'+])*(?:[A-Za-z0-9+/]{20,}|Proc-Type:)"
        ),
        (b"-----begin ",),
        (0,),
    ),
    # aws_secret_access_key / AWS_SECRET_ACCESS_KEY / SecretAccessKey (STS JSON) /
    # secret_access_key, then = or : (with an optional type annotation), then
    # exactly 40 characters of the key alphabet.
    (
        "an aws_secret_access_key value",
        re.compile(
            rb"(?i)(?:aws_?)?secret_?access_?key[\"']?\s*(?::\s*[A-Za-z_][\w.\[\]]*\s*)?"
            rb"[:=]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
        ),
        (b"secret",),
        (4, 3, 0),  # "aws_secret", "awssecret", "secret"
    ),
)
# AWS's documentation example credentials are public and harmless.
_EXAMPLE = re.compile(rb"EXAMPLE", re.IGNORECASE)
# The escape hatch for a false positive, in detect-secrets' spelling, on the line
# of the hit: `KEY_ID_FORMAT = "AKIA..."  # pragma: allowlist secret`.
ALLOWLIST_PRAGMA = b"pragma: allowlist secret"


@dataclass(frozen=True)
class SecretHit:
    name: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.name}:{self.line}: looks like {self.kind}"


def scan_secrets(name: str, content: bytes) -> list[SecretHit]:
    """Every key pattern in the file, whatever it is: text in any ASCII-compatible
    encoding, UTF-16/UTF-32 text (scanned again with its NUL bytes removed, which turns
    the ASCII characters of a key back into one run), or a binary file."""
    hits = _scan(name, content)
    if b"\0" in content:
        seen = {(h.line, h.kind) for h in hits}
        hits += [
            # translate: 2 ms a MB whatever the content (replace took 18 ms on zeros)
            h
            for h in _scan(name, content.translate(None, b"\0"))
            if (h.line, h.kind) not in seen
        ]
    return sorted(hits, key=lambda h: (h.name, h.line))


def refuse_secrets(files: Iterable[tuple[str, bytes]], advice: str) -> None:
    """The project's own files (name, content) must hold no key: the first hit, how
    many more, and `advice` on where the key belongs."""
    hits = [h for name, data in files for h in scan_secrets(name, data)]
    if hits:
        raise UserError(f"secret scan: {hits[0]}{and_more(hits)}; {advice}")


_OVERLAP = 4096


def scan_stream(name: str, chunks: Iterable[bytes]) -> list[SecretHit]:
    """scan_secrets over a file read in chunks (verify never holds a whole member in
    memory): each window overlaps the previous one by more than any key is long."""
    found: dict[tuple[int, str], SecretHit] = {}
    tail, lines_before = b"", 0
    for chunk in chunks:
        buf = tail + chunk
        for hit in scan_secrets(name, buf):
            line = lines_before + hit.line
            found.setdefault((line, hit.kind), SecretHit(name, line, hit.kind))
        cut = max(0, len(buf) - _OVERLAP)
        lines_before += buf.count(b"\n", 0, cut)
        tail = buf[cut:]
    return sorted(found.values(), key=lambda h: h.line)


def _scan(name: str, content: bytes) -> list[SecretHit]:
    hits = []
    lowered = content.lower()  # ASCII only: the same length, so the same offsets
    for kind, pattern, anchors, offsets in SECRET_PATTERNS:
        for match in _matches(pattern, content, lowered, anchors, offsets):
            if _EXAMPLE.search(match.group(0)):
                continue
            start = match.start()
            first = content.rfind(b"\n", 0, start) + 1
            last = content.find(b"\n", start)
            if ALLOWLIST_PRAGMA in content[first : last if last >= 0 else len(content)]:
                continue
            line = content.count(b"\n", 0, start) + 1
            hits.append(SecretHit(name, line, kind))
    return hits


# More tries than one per this many bytes (and than _MIN_TRIES): the anchors are dense
# (a file made of them, as a hostile wheel may be), and one pass of the regex costs less
# than a try at each, and holds no list of them.
_DENSE_BYTES = 1024
_MIN_TRIES = 64


def _matches(
    pattern: re.Pattern[bytes],
    content: bytes,
    lowered: bytes,
    anchors: tuple[bytes, ...],
    offsets: tuple[int, ...],
) -> Iterator[re.Match[bytes]]:
    """What `pattern.finditer(content)` finds, tried only where an anchor says a match
    can start: in order, never inside the previous match."""
    budget = max(len(content) // _DENSE_BYTES, _MIN_TRIES)
    starts: set[int] = set()
    for anchor in anchors:
        at = lowered.find(anchor)
        while at >= 0:
            starts.update(at - back for back in offsets if at >= back)
            if len(starts) > budget:
                yield from pattern.finditer(content)
                return
            at = lowered.find(anchor, at + 1)
    end = 0
    for start in sorted(starts):
        if start >= end and (match := pattern.match(content, start)) is not None:
            end = match.end()
            yield match
