"""Fixtures for end-to-end tests against a real local model: llama-server with Gemma 3 270M.

The server starts once per test session, on 127.0.0.1 on a free port. Its log goes to
pytest's temporary folder, which pytest keeps after the run for diagnosis.

Where the server binary or the model package is not installed, the tests skip with the
install command. With ``SLUICEGATE_REQUIRE_LOCAL_MODEL=1`` (CI sets it) they fail instead,
so that a missing install step cannot pass as a green run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sluicegate import localmodel

REQUIRE_VARIABLE = "SLUICEGATE_REQUIRE_LOCAL_MODEL"


def _local_model_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


@pytest.fixture(scope="session")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[localmodel.LocalModelServer]:
    """A running llama-server with Gemma 3 270M, shared by every test of the session."""
    reason = localmodel.available()
    if reason is not None:
        if _local_model_required():
            pytest.fail(f"{REQUIRE_VARIABLE} is set but the local model cannot run: {reason}", pytrace=False)
        pytest.skip(f"local model not installed (set {REQUIRE_VARIABLE}=1 to fail instead): {reason}")

    log_path = tmp_path_factory.mktemp("local-model") / "llama-server.log"
    with localmodel.LocalModelServer(log_path=log_path) as server:
        yield server
