"""House rules of the test suite that a reviewer would otherwise have to remember.

No test module imports another test module or a conftest: shared code lives in tests/helpers.py.
(Importing a test module re-collects nothing but couples two files' private names, and importing a
conftest bypasses pytest's fixture scoping.)
"""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_or_conftest(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def forbidden_imports(source: str) -> list[str]:
    """The imports in ``source`` that name a ``test_*`` module or a ``conftest``.

    Covers ``import tests.x.test_y``, ``from tests.x.test_y import z``, ``from .test_y import z``,
    ``from .conftest import z`` and ``from tests.x import test_y`` / ``from . import conftest``.
    """
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if _is_test_or_conftest(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.module and _is_test_or_conftest(node.module):
                bad.append(module)
            elif node.module is None or node.level or node.module.startswith("tests"):
                bad += [f"{module}.{a.name}" for a in node.names if _is_test_or_conftest(a.name)]
    return bad


def test_no_test_module_imports_another_test_module_or_a_conftest():
    offenders = {
        str(p.relative_to(TESTS)): bad
        for p in sorted(TESTS.rglob("test_*.py"))
        if (bad := forbidden_imports(p.read_text(encoding="utf-8")))
    }
    assert not offenders, f"move the shared code to tests/helpers.py: {offenders}"


def test_the_import_check_catches_each_form():
    """Must-fail twin: every way of importing a test module or a conftest is caught."""
    caught = [
        "from tests.rjmcmc.test_prior_recovery import ALPHA",
        "from .test_prior_recovery import ALPHA",
        "from .conftest import synthetic_trace",
        "from tests.report.conftest import synthetic_trace",
        "import tests.inference.test_flat_model",
        "from tests.inference import test_flat_model",
        "from . import conftest",
    ]
    for src in caught:
        assert forbidden_imports(src), src
    allowed = [
        "from tests.helpers import ALPHA",
        "import pytest",
        "from bayesmoe.diagnostics import summary",
        "from scipy.stats import test_statistic_like_name",  # a non-test package's name
    ]
    for src in allowed:
        assert not forbidden_imports(src), src
