import pytest

from lambda_pkg.audit import audit_elf, is_shared_object, parse_elf, scan_secrets

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


@pytest.mark.parametrize(
    ("text", "kind", "line"),
    [
        ("KEY = 'AKIAABCDEFGHIJKLMNOP'\n", "an AWS access key id", 1),
        ("x = 1\ntoken = \"ASIAQQQQQQQQQQQQQQQQ\"\n", "an AWS access key id", 2),
        ("a\nb\n-----BEGIN RSA PRIVATE KEY-----\nabc\n", "a private key block", 3),
        ("-----BEGIN PRIVATE KEY-----\n", "a private key block", 1),
        ("[default]\naws_secret_access_key = abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB\n",
         "an aws_secret_access_key value", 2),
        ('{"aws_secret_access_key": "abcdEFGHijklMNOPqrstUVWXyz0123456789/+AB"}',
         "an aws_secret_access_key value", 1),
    ],
)  # fmt: skip
def test_secret_patterns_are_found_with_their_line(text, kind, line):
    hits = scan_secrets("backend/conf.py", text.encode())
    assert [str(h) for h in hits] == [f"backend/conf.py:{line}: looks like {kind}"]


def test_clean_code_and_documented_examples_pass():
    text = (
        b"key = os.environ['AWS_SECRET_ACCESS_KEY']\n"
        b"aws_secret_access_key=None\n"
        b"example = 'AKIAIOSFODNN7EXAMPLE'\n"
        b"AKIAABCDEFGHIJKLMNOPQ  # 21 chars: not a key id\n"
    )
    assert scan_secrets("a.py", text) == []


def test_binary_files_are_not_scanned():
    assert scan_secrets("a.bin", b"\0AKIAABCDEFGHIJKLMNOP") == []
