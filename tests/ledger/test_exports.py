"""The public surface of ``sluicegate.ledger``: ``__all__`` lists exactly its public names."""

from __future__ import annotations

import types

import sluicegate.ledger as ledger_package


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(ledger_package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(ledger_package.__all__) == sorted(public)
    assert "connect" in ledger_package.__all__
