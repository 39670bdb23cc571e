"""What ships (backend/ and aws/ go into the Lambda zip and the service's image) imports
nothing of what does not: not the Pulumi program (infra/, pulumi), not the operator CLI
or the packager, not the local cloud, not the tests. The backtester once imported
infra.stackfile; a stack's own backtest is `python -m ops backtest --stack NAME` now."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NOT_SHIPPED = ("infra", "ops", "lambda_pkg", "localcloud", "pulumi", "pulumi_aws", "tests")
SHIPPED = sorted(p for d in ("backend", "aws") for p in (ROOT / d).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_code_imports_nothing_that_is_not_shipped(path):
    wrong = sorted(name for name in imported(path) if name.split(".")[0] in NOT_SHIPPED)
    assert wrong == [], f"{path.relative_to(ROOT)} imports {', '.join(wrong)}"


def test_the_scan_sees_the_backtester():
    assert ROOT / "backend" / "trading" / "backtest.py" in SHIPPED
    assert "backend.trading.history" in imported(ROOT / "backend" / "trading" / "backtest.py")
