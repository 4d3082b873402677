"""``sluicegate gateway`` refuses to start on a config or a ledger it cannot use, with a message
that names the problem and hides the ledger's password."""

from __future__ import annotations

import pathlib

import pytest

from sluicegate import cli
from tests.gateway import harness


def test_broken_config_exits_2(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = harness.write_config(tmp_path / "budgets.yaml", harness.budget_doc(ceiling="1.1234567"))
    assert cli.main(["gateway", "--config", str(path), "--ledger", f"sqlite:///{tmp_path}/ledger.db"]) == 2
    error = capsys.readouterr().err
    assert "spec.ceilingUSD" in error
    assert "at most 6 decimal places" in error


def test_missing_config_exits_2(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gateway", "--config", str(tmp_path / "nowhere.yaml")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_unreachable_ledger_exits_1(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = harness.write_config(tmp_path / "budgets.yaml", harness.budget_doc(ceiling="1.00"),
                                harness.policy_doc(local_url="http://127.0.0.1:9/v1", cloud_url=None))
    port = harness.free_port()
    assert cli.main(["gateway", "--config", str(path), "--ledger", f"postgresql://sg:hunter2@127.0.0.1:{port}/ledger"]) == 1
    error = capsys.readouterr().err
    assert "cannot open the ledger" in error
    assert "--ledger" in error
    assert "hunter2" not in error
