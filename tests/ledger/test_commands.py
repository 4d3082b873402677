"""``sluicegate keys`` and ``sluicegate ledger`` through ``sluicegate.cli.main``, on both backends.

Covers:
- a created key, printed alone on stdout and usable at once;
- listing keys without secrets, and revoking a key twice;
- the report as a table and as JSON, with windows from stored budgets or ``--config``;
- the ledger URL from ``--ledger``, from SLUICEGATE_LEDGER_URL, and by default;
- exit codes and messages for bad input.
"""

from __future__ import annotations

import asyncio
import json
import pathlib

import pytest

from sluicegate import api, cli, ledger
from .conftest import attempt, budget

def usd(text: str) -> int:
    return api.parse_usd(text, max_decimals=9)


def resolve(url: str, key: str) -> str | None:
    async def run() -> str | None:
        target = ledger.connect(url)
        try:
            return await target.resolve_api_key(key)
        finally:
            await target.close()

    return asyncio.run(run())


def seed_spend(url: str) -> None:
    """Store a Daily budget for team-a and settle two cloud calls and one local call."""

    async def run() -> None:
        target = ledger.connect(url)
        try:
            await target.migrate()
            daily = budget("daily", period="Daily", ceiling_usd="10.00")
            await target.sync_budgets([daily])
            for route, model, charge in (("cloud", "gpt-4.1", "0.25"), ("cloud", "gpt-4.1", "0.00860376"), ("local", "llama3.2:3b", "0")):
                held = await target.reserve(namespace="team-a", budgets=[daily], amount_nano=usd("0.50"), ttl_seconds=60)
                await target.settle(
                    held, attempt(route=route, model=model, charged_nano=usd(charge), estimated_nano=usd("0.50"), prompt_tokens=100, completion_tokens=7)
                )
        finally:
            await target.close()

    asyncio.run(run())


def test_keys_create_prints_only_key(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "create", "--namespace", "team-a", "--ledger", ledger_url]) == 0
    output = capsys.readouterr()
    key = output.out.strip()
    key_id = key.split("-")[1]
    assert output.out == key + "\n"
    assert f"created key {key_id} for namespace team-a" in output.err
    assert resolve(ledger_url, key) == "team-a"


def test_keys_list_and_revoke(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["keys", "create", "--namespace", "team-a", "--ledger", ledger_url])
    cli.main(["keys", "create", "--namespace", "team-b", "--ledger", ledger_url])
    key_a, key_b = capsys.readouterr().out.split()
    id_a = key_a.split("-")[1]

    assert cli.main(["keys", "list", "--ledger", ledger_url]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].split() == ["KEY", "ID", "NAMESPACE", "CREATED", "REVOKED"]
    assert id_a in listing
    assert "team-b" in listing
    assert key_a not in listing
    assert key_b not in listing

    assert cli.main(["keys", "list", "--namespace", "team-b", "--ledger", ledger_url]) == 0
    assert id_a not in capsys.readouterr().out

    assert cli.main(["keys", "revoke", id_a, "--ledger", ledger_url]) == 0
    assert f"revoked key {id_a}" in capsys.readouterr().err
    assert resolve(ledger_url, key_a) is None
    assert resolve(ledger_url, key_b) == "team-b"

    assert cli.main(["keys", "revoke", id_a, "--ledger", ledger_url]) == 1
    assert f"no unrevoked API key with id '{id_a}'" in capsys.readouterr().err


def test_report_table(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed_spend(ledger_url)
    assert cli.main(["ledger", "report", "--ledger", ledger_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "BUDGET", "PERIOD"]
    cells = [line.split() for line in lines[1:]]
    assert [(row[0], row[1], row[2], row[5], row[6], row[7], row[-1]) for row in cells] == [
        ("team-a", "daily", "Daily", "cloud", "gpt-4.1", "2", "0.25860376"),
        ("team-a", "daily", "Daily", "local", "llama3.2:3b", "1", "0"),
    ]


def test_report_json_with_config(ledger_url: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_spend(ledger_url)
    config = tmp_path / "budgets.yaml"
    config.write_text(
        "apiVersion: sluicegate.io/v1alpha1\nkind: LLMBudget\n"
        "metadata: {name: lifetime, namespace: team-a}\nspec: {ceilingUSD: '50', period: Total}\n"
    )

    assert cli.main(["ledger", "report", "--ledger", ledger_url, "--format", "json", "--config", str(config)]) == 0
    rows = json.loads(capsys.readouterr().out)

    assert [(row["budget"], row["period"], row["route"], row["calls"], row["chargedUSD"]) for row in rows] == [
        ("lifetime", "Total", "cloud", 2, "0.25860376"),
        ("lifetime", "Total", "local", 1, "0"),
    ]
    assert rows[0]["windowStart"] == "1970-01-01T00:00:00Z"
    assert rows[0]["windowEnd"] is None
    assert rows[0]["estimatedUSD"] == "1"
    assert (rows[0]["promptTokens"], rows[0]["completionTokens"]) == (200, 14)


def test_report_namespace_filter(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed_spend(ledger_url)
    assert cli.main(["ledger", "report", "--ledger", ledger_url, "--namespace", "team-b", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_ledger_url_from_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLUICEGATE_LEDGER_URL", sqlite_url)
    assert cli.main(["keys", "create", "--namespace", "team-a"]) == 0
    assert resolve(sqlite_url, capsys.readouterr().out.strip()) == "team-a"


def test_ledger_url_default_is_local_sqlite(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLUICEGATE_LEDGER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["keys", "create", "--namespace", "team-a"]) == 0
    assert (tmp_path / "sluicegate-ledger.db").is_file()
    assert resolve("sqlite:///./sluicegate-ledger.db", capsys.readouterr().out.strip()) == "team-a"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["keys", "list", "--ledger", "mysql://root:hunter2@127.0.0.1/x"], 2, "unsupported ledger URL 'mysql://root:***@127.0.0.1/x'"),
        (["keys", "create", "--namespace", "Team_A"], 2, "invalid namespace 'Team_A'"),
        (["ledger", "report", "--ledger", "sqlite:///:memory:", "--config", "/nonexistent/budgets.yaml"], 2, "no such file or folder"),
        (["ledger", "report", "--ledger", "sqlite:////nonexistent/ledger.db"], 2, "no ledger at /nonexistent/ledger.db"),
        (["keys", "list", "--ledger", "sqlite:////nonexistent/ledger.db"], 2, "no ledger at /nonexistent/ledger.db"),
        (["keys", "list", "--ledger", "postgresql://postgres:hunter2@127.0.0.1:9/x"], 1, "PostgreSQL ledger is unreachable"),
    ],
)
def test_bad_input_exits_with_message(
    argv: list[str], code: int, message: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLUICEGATE_LEDGER_URL", raising=False)
    assert cli.main(argv) == code
    error = capsys.readouterr().err
    assert message in error
    assert "hunter2" not in error


def test_migrate_command(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ledger", "migrate", "--ledger", sqlite_url]) == 0
    assert "up to date" in capsys.readouterr().err
    assert cli.main(["ledger", "migrate", "--ledger", sqlite_url]) == 0


def test_attempts_command_finds_request(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"

    async def seed() -> None:
        store = ledger.connect(url)
        await store.migrate()
        for request in ("first", "second"):
            await store.record(ledger.Attempt(
                request_id=ledger.RequestId(request), attempt_id=f"{request}-0", namespace="team-a", route="cloud",
                provider="openai", model="gpt-4.1", decision=ledger.Decision.CLASSIFIED, outcome=ledger.Outcome.REJECTED))
        await store.close()

    asyncio.run(seed())
    assert cli.main(["ledger", "attempts", "--ledger", url, "--request-id", "second", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["requestId"] for row in rows] == ["second"]
    assert rows[0]["outcome"] == "rejected"
    assert cli.main(["ledger", "attempts", "--ledger", url, "--request-id", "missing"]) == 1
    assert "no attempt rows for request 'missing'" in capsys.readouterr().err
    assert cli.main(["ledger", "attempts", "--ledger", url]) == 0
    table = capsys.readouterr().out
    assert "HELD USD" in table
    assert table.count("team-a") == 2
