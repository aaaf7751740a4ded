"""The benchmark smoke tests run the harness and its peers as subprocesses and time them:
they run alone (``serial``, `make test`'s second pytest), never beside another xdist worker."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.serial)
