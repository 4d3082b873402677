"""Budget windows seen through the gateway: spend survives re-creating a budget and a restart,
and a new month starts at $0. The ledger's clock is replaced by one the test moves."""

from __future__ import annotations

import datetime
from typing import Any

from sluicegate import api, ledger
from sluicegate.scripted import flat
from tests.gateway import harness

UTC = datetime.timezone.utc


class MovableClock:
    """An async clock the test sets; shared by the gateway's thread and the test."""

    def __init__(self, at: datetime.datetime) -> None:
        self.at = at

    async def __call__(self) -> datetime.datetime:
        return self.at


async def test_recreated_budget_keeps_window_spend(start_gateway: Any, cloud: Any, local: Any, postgres_url: str) -> None:
    cloud.set_default(flat(completion_tokens=1000))
    clock = MovableClock(datetime.datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    factory = lambda url: ledger.connect(url, clock=clock)  # noqa: E731
    policy = harness.policy_doc(local_url=local.base_url, cloud_url=cloud.base_url,
                                cloud_price={"input": "0", "output": "100"})
    budget = harness.budget_doc(ceiling="1.00")

    first = await start_gateway(budget, policy, ledger_factory=factory)
    clock.at += datetime.timedelta(minutes=1)
    for _ in range(4):
        assert (await first.chat(max_tokens=1000)).status_code == 200

    # Delete and re-apply the budget, and restart the gateway.
    clock.at += datetime.timedelta(minutes=9)
    first.gateway.stop()
    await harness.new_key(postgres_url)
    harness.write_config(first.config_path, policy)
    renamed = dict(budget, metadata={"name": "monthly-v2", "namespace": harness.NAMESPACE})
    second = await start_gateway(renamed, policy, ledger_url=postgres_url, ledger_factory=factory)
    await harness.settled()
    store = ledger.connect(postgres_url, clock=clock)
    try:
        states = await store.budget_states([ledger.BudgetRef.from_budget(b) for b in second.config.budgets])
    finally:
        await store.close()
    assert states[0].spent_nano == api.parse_usd("0.40")

    statuses = [(await second.chat(max_tokens=1000)).status_code for _ in range(7)]
    assert statuses == [200] * 6 + [429]

    clock.at = datetime.datetime(2026, 4, 1, 0, 0, 5, tzinfo=UTC)
    assert (await second.chat(max_tokens=1000)).status_code == 200
    rows = await harness.rows(postgres_url)
    paid = [row for row in rows if row.charged_nano]
    assert len(paid) == 11
    assert sum(row.charged_nano for row in paid) == api.parse_usd("1.10")
