import random

import pytest

from lambda_pkg.audit import SECRET_PATTERNS, audit_elf, is_shared_object, parse_elf, scan_secrets

from .conftest import make_elf


def test_glibc_need_is_read_from_the_version_table():
    info = parse_elf(make_elf(62, ("GLIBC_2.2.5", "GLIBC_2.28", "GLIBC_2.17")))
    assert info.machine == 62
    assert info.glibc == (2, 28)


def test_glibc_need_is_found_without_section_headers():
    info = parse_elf(make_elf(183, ("GLIBC_2.34",), sections=False))
    assert (info.machine, info.glibc) == (183, (2, 34))


def test_wrong_machine_is_named():
    problem = audit_elf("pkg/_x.so", make_elf(183), runtime="python3.12", architecture="x86_64")
    assert problem == "pkg/_x.so: built for aarch64, but the target is x86_64"


@pytest.mark.parametrize(
    ("runtime", "version", "ok"),
    [
        ("python3.12", "GLIBC_2.34", True),
        ("python3.12", "GLIBC_2.35", False),
        ("python3.11", "GLIBC_2.26", True),
        ("python3.11", "GLIBC_2.28", False),
    ],
)
def test_glibc_ceiling_per_runtime(runtime, version, ok):
    problem = audit_elf("l.so", make_elf(62, (version,)), runtime=runtime, architecture="x86_64")
    if ok:
        assert problem is None
    else:
        assert problem is not None
        assert f"needs {version}" in problem
        assert runtime in problem


def test_right_machine_for_arm64():
    assert audit_elf("l.so", make_elf(183), runtime="python3.12", architecture="arm64") is None


def test_non_elf_library_is_a_problem():
    problem = audit_elf(
        "m.so", b"\xcf\xfa\xed\xfe" + b"\0" * 60, runtime="python3.12", architecture="x86_64"
    )
    assert "not an ELF file" in problem


def test_truncated_elf_is_a_problem_not_a_crash():
    problem = audit_elf("t.so", make_elf()[:80], runtime="python3.12", architecture="x86_64")
    assert problem is not None


def test_shared_object_names():
    assert is_shared_object("a/b.cpython-312-x86_64-linux-gnu.so")
    assert is_shared_object("numpy.libs/libgfortran-040039e1.so.5.0.0")
    assert not is_shared_object("a/so.py")


PEM_BODY = "MIIEowIBAAKCAQEAx3VLcJ0sy0b6hK0Zr8Tn0A9\n"
SECRET = "abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB"  # 40 characters of the key alphabet


@pytest.mark.parametrize(
    ("text", "kind", "line"),
    [
        ("KEY = 'AKIAABCDEFGHIJKLMNOP'\n", "an AWS access key id", 1),
        ("x = 1\ntoken = \"ASIAQQQQQQQQQQQQQQQQ\"\n", "an AWS access key id", 2),
        ("url = 'https://x/?id=AKIAABCDEFGHIJKLMNOP&y'\n", "an AWS access key id", 1),
        (f"a\nb\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}", "a private key block", 3),
        (f"-----BEGIN PRIVATE KEY-----\r\n{PEM_BODY}", "a private key block", 1),
        (f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}", "a private key block", 1),
        ("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n", "a private key block", 1),
        # a key inside a string literal, with escaped newlines, or split over literals
        (f'K = "-----BEGIN EC PRIVATE KEY-----\\n{PEM_BODY[:-1]}\\n"\n',
         "a private key block", 1),
        (f'K = ("-----BEGIN PRIVATE KEY-----\\n"\n     "{PEM_BODY[:-1]}")\n',
         "a private key block", 1),
        (f"[default]\naws_secret_access_key = {SECRET}\n", "an aws_secret_access_key value", 2),
        (f'{{"aws_secret_access_key": "{SECRET}"}}', "an aws_secret_access_key value", 1),
        (f"export AWS_SECRET_ACCESS_KEY={SECRET}\n", "an aws_secret_access_key value", 1),
        (f'{{"SecretAccessKey": "{SECRET}"}}', "an aws_secret_access_key value", 1),
        (f"boto3.client('s3', aws_secret_access_key='{SECRET}')\n",
         "an aws_secret_access_key value", 1),
        (f'aws_secret_access_key: str = "{SECRET}"\n', "an aws_secret_access_key value", 1),
    ],
)  # fmt: skip
def test_secret_patterns_are_found_with_their_line(text, kind, line):
    hits = scan_secrets("backend/conf.py", text.encode())
    assert [str(h) for h in hits] == [f"backend/conf.py:{line}: looks like {kind}"]


@pytest.mark.parametrize(
    "text",
    [
        "key = os.environ['AWS_SECRET_ACCESS_KEY']\n",
        "aws_secret_access_key=None\n",
        "aws_secret_access_key = settings.aws_secret_access_key\n",
        "example = 'AKIAIOSFODNN7EXAMPLE'\n",  # AWS's documented example
        "aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'\n",
        "AKIAABCDEFGHIJKLMNOPQ  # 21 characters: not a key id\n",
        "XAKIAABCDEFGHIJKLMNOP  # part of a longer word\n",
        f"aws_secret_access_key = '{SECRET}x'  # 41 characters: not a secret key\n",
        # code that handles keys names the PEM header; no key follows it
        'if line.startswith("-----BEGIN RSA PRIVATE KEY-----"):\n    parse(line)\n',
        'HEADER = "-----BEGIN PRIVATE KEY-----"\nFOOTER = "-----END PRIVATE KEY-----"\n',
        "-----BEGIN PUBLIC KEY-----\n" + PEM_BODY,
        "-----BEGIN CERTIFICATE-----\n" + PEM_BODY,
        # a declared false positive, in detect-secrets' spelling
        "FORMAT = 'AKIAABCDEFGHIJKLMNOP'  # pragma: allowlist secret\n",
    ],
)
def test_clean_code_and_false_positives_pass(text):
    assert scan_secrets("a.py", text.encode()) == []


def test_the_allowlist_pragma_covers_its_own_line_only():
    text = b"A = 'AKIAABCDEFGHIJKLMNOP'  # pragma: allowlist secret\nB = 'AKIAQQQQQQQQQQQQQQQQ'\n"
    assert [str(h) for h in scan_secrets("a.py", text)] == [
        "a.py:2: looks like an AWS access key id"
    ]


def test_every_hit_is_reported_in_line_order():
    text = f"x = 1\nS = '{SECRET}'\naws_secret_access_key={SECRET}\nK = 'AKIAABCDEFGHIJKLMNOP'\n"
    assert [h.line for h in scan_secrets("a.py", text.encode())] == [3, 4]


def test_binary_files_are_scanned_too():
    # Issue 10: a NUL byte in the first 8 KiB used to make a file "binary" and unscanned.
    hits = scan_secrets("a.bin", b"\0" * 9000 + b"AKIAABCDEFGHIJKLMNOP")
    assert [str(h) for h in hits] == ["a.bin:1: looks like an AWS access key id"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_keys_in_utf16_and_utf32_text_are_found(encoding):
    text = f"x = 1\naws_secret_access_key = {SECRET}\nK = 'AKIAABCDEFGHIJKLMNOP'\n"
    hits = scan_secrets("conf.ini", text.encode(encoding))
    assert [(h.line, h.kind) for h in hits] == [
        (2, "an aws_secret_access_key value"),
        (3, "an AWS access key id"),
    ]


# Keys, their near-misses and their pieces.
PIECES = [
    b"AKIA", b"ASIA", b"Asia/Tokyo", b"aws_", b"AWS", b"aws", b"secret", b"Secret",
    b"_access", b"Access", b"_key", b"Key", b" = ", b": ", b":str=", b"'", b'"', b"\n",
    b"-----BEGIN ", b"RSA ", b"ENCRYPTED ", b"PRIVATE KEY", b"-----", b"\\n", b"Proc-Type:",
    b"ABCDEFGHIJKLMNOP", b"wJalrXUtnFEMIK7MDENGbPxRfiCYzzzzzzzzzzzz", b"0123456789",
    b"aws_secret_access_key=", b"AKIAABCDEFGHIJKLMNOP", b"x", b"+/",
    b"-----BEGIN PRIVATE KEY-----", b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
]  # fmt: skip


def _texts(count: int, pieces: int) -> list[bytes]:
    rnd = random.Random(7)  # noqa: S311 (the same texts every run, not a secret)
    return [
        b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, pieces))) for _ in range(count)
    ]


def _anywhere(text: bytes) -> list[tuple[int, str]]:
    """(line, kind) of every match of the patterns tried at every offset (finditer)."""
    return sorted(
        (text.count(b"\n", 0, m.start()) + 1, kind)
        for kind, pattern, *_ in SECRET_PATTERNS
        for m in pattern.finditer(text)
    )


def test_the_anchored_scan_finds_every_match_a_scan_from_every_offset_finds():
    # The scan tries each pattern only where an anchor says a match can start; the same
    # patterns tried at every offset must find nothing more.
    found: set[str] = set()
    for text in _texts(4000, 30):
        anywhere = _anywhere(text)
        assert sorted((h.line, h.kind) for h in scan_secrets("f", text)) == anywhere, text
        found.update(kind for _, kind in anywhere)
    assert found == {kind for kind, *_ in SECRET_PATTERNS}  # not only near-misses


def test_text_made_of_anchors_is_scanned_the_same():
    # Anchors denser than one a KiB (a hostile wheel's member made of "secret"): the scan
    # takes one pass of each pattern instead of a try at each, with the same hits.
    for text in _texts(20, 3000):
        assert sorted((h.line, h.kind) for h in scan_secrets("f", text)) == _anywhere(text)
