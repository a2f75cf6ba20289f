"""pytest configuration for the whole repository (not shipped: the wheel holds ``bayesmoe/`` only).

The package's docstring examples run as doctests (``--doctest-modules`` and ``bayesmoe`` in
``testpaths``, see pyproject.toml). Each runs with the Agg backend, in a fresh temporary working
directory (examples that write files leave nothing in the checkout), and with its figures closed
afterwards. Nothing is injected into the doctest namespace: every example imports what it uses, so
it runs as written when pasted into a session.
"""

import matplotlib
import pytest
from _pytest.doctest import DoctestItem

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _doctest_sandbox(request):
    """For doctest items only: run in a temporary directory and close figures afterwards."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
