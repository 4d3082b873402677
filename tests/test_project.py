"""Project-wide checks: the import layers hold, the package type-checks strictly, and each
package's ``__all__`` names exactly what it exports."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUBLIC_PACKAGES = ["sluicegate.api", "sluicegate.routing", "sluicegate.ledger", "sluicegate.gateway", "sluicegate.scripted"]


def test_import_layers_hold() -> None:
    lint_imports = pathlib.Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), str(ROOT / "pyproject.toml")],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_package_passes_mypy_strict() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_all_lists_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {attribute for attribute in vars(module) if not attribute.startswith("_")}
    submodules = {attribute for attribute in public if type(getattr(module, attribute)).__name__ == "module"}
    assert exported == public - submodules
    assert list(module.__all__) == sorted(module.__all__, key=str)
