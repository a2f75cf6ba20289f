"""House rules of the test suite that a reviewer would otherwise have to remember.

No test module imports another test module or a conftest: shared code lives in tests/helpers.py.
(Importing a test module re-collects nothing but couples two files' private names, and importing a
conftest bypasses pytest's fixture scoping.) Outside the family and gate modules, the package asks
a family or a gate; it does not compare their names (issue 20: at most 5 places, from 73).
"""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "bayesmoe"
#: where a family's or a gate's name may be compared: their own modules
_OWN_MODULES = ("families", "gates")
_MAX_NAME_COMPARISONS = 5


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


def _strings(node) -> set:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant)} - {None}
    return set()


def name_comparisons(source: str, names: set) -> list[str]:
    """Comparisons (``==``, ``!=``, ``in``) of a family- or gate-like expression (its text names
    ``fam`` or ``gate``) with one of ``names``, as source lines.
    """
    tree, hits = ast.parse(source), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        constants = set().union(*(_strings(o) for o in operands))
        others = [ast.get_source_segment(source, o) or "" for o in operands if not _strings(o)]
        if constants & names and any(re.search(r"fam|gate", o) for o in others):
            hits.append(ast.get_source_segment(source, node))
    return hits


def _family_and_gate_names() -> set:
    from bayesmoe.families import FAMILIES
    from bayesmoe.gates import _STORED

    return set(FAMILIES) | set(_STORED)


def test_family_and_gate_names_are_compared_only_in_their_modules():
    names = _family_and_gate_names()
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] in _OWN_MODULES:
            continue
        if hits := name_comparisons(path.read_text(encoding="utf-8"), names):
            found[str(path.relative_to(PACKAGE))] = hits
    n = sum(map(len, found.values()))
    assert n <= _MAX_NAME_COMPARISONS, f"ask the family or gate instead: {found}"


def test_the_name_comparison_check_catches_each_form():
    """Must-fail twin: the branches issue 20 removed are each caught; asking is not."""
    names = _family_and_gate_names()
    caught = [
        'if family == "gaussian": pass',
        'if info.family != "categorical": pass',
        'ok = fam.name in ("poisson", "binomial")',
        'if gate == "identity": pass',
        'if spec.gate in {"tanh", "sigmoid"}: pass',
    ]
    for src in caught:
        assert name_comparisons(src, names), src
    allowed = [
        "if get_family(family).has_classes: pass",
        'if init_mass == "identity": pass',  # not a family or gate
        "if spec.gate_module.covariates: pass",
    ]
    for src in allowed:
        assert not name_comparisons(src, names), src
