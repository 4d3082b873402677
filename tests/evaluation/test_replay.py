"""``sluicegate replay`` against a fake gateway on 127.0.0.1.

Covers:

- counting routes, decisions, escalations, rejections and errors from real HTTP responses;
- spend summed from the cost header, against the all-cloud cost of the reported usage;
- latency percentiles, the concurrency bound and the total time bound;
- the HTML page;
- bad workloads, options and gateways getting clear errors.
"""

from __future__ import annotations

import json
import pathlib
import socket
from collections.abc import Iterator

import pytest

from sluicegate import cli
from sluicegate.evaluation import _replay
from sluicegate.routing import _pricing
from tests.evaluation import fake_gateway

WORKLOAD = [
    {"prompt": "hello"},
    {"prompt": "a cloud question"},
    {"prompt": "please escalate"},
    {"prompt": "over budget"},
    {"prompt": "a loop again"},
    {"prompt": "broken upstream"},
    {"model": "local", "messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {}},
]


@pytest.fixture
def gateway() -> Iterator[fake_gateway.FakeGateway]:
    yield from fake_gateway.serve()


def write_workload(path: pathlib.Path, rows: list[dict[str, object]]) -> pathlib.Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def replay_args(workload: pathlib.Path, gateway: fake_gateway.FakeGateway, *extra: str) -> list[str]:
    return ["replay", str(workload), "--gateway", gateway.url, "--key", fake_gateway.API_KEY, *extra]


def test_report_counts_routes_decisions_and_rejections(
    gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = write_workload(tmp_path / "work.jsonl", WORKLOAD)
    prices = ["--cloud-price-input", "2.00", "--cloud-price-output", "8.00"]
    assert cli.main(replay_args(workload, gateway, *prices)) == 0
    output = capsys.readouterr().out

    assert "requests: 7 sent, 4 answered" in output
    assert "routes: local 2, cloud 2" in output
    assert "decisions: classified 3, escalated 1" in output
    assert "escalations (local failed, cloud answered): 1" in output
    assert "rejections (HTTP 429): budget_exceeded 1, loop_detected 1" in output
    assert "other errors: HTTP 502 upstream_error 1" in output
    # Two cloud answers at $0.00036 each; all-cloud prices all four answers the same way.
    assert "spend: 0.00072 USD" in output
    assert "all-cloud cost of the same answers: 0.00144 USD, 50.0% saved" in output
    assert "  local         2 requests" in output
    assert "  cloud         2 requests" in output


def test_workload_lines_become_chat_requests(
    gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path
) -> None:
    workload = write_workload(tmp_path / "work.jsonl", [WORKLOAD[0], WORKLOAD[-1]])
    assert cli.main(replay_args(workload, gateway, "--model", "auto", "--concurrency", "1")) == 0
    assert gateway.bodies[0] == {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    assert gateway.bodies[1] == {"model": "local", "messages": [{"role": "user", "content": "hi"}]}


def test_limit_sends_only_the_first_requests(gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path) -> None:
    workload = write_workload(tmp_path / "work.jsonl", WORKLOAD)
    assert cli.main(replay_args(workload, gateway, "--limit", "2", "--concurrency", "1")) == 0
    assert [body["messages"][0]["content"] for body in gateway.bodies] == ["hello", "a cloud question"]


def test_concurrency_bounds_requests_in_flight(gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path) -> None:
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": f"hello {index}"} for index in range(12)])
    assert cli.main(replay_args(workload, gateway, "--concurrency", "3")) == 0
    assert len(gateway.bodies) == 12
    assert gateway.max_in_flight == 3


async def test_total_time_bound_stops_the_replay(gateway: fake_gateway.FakeGateway) -> None:
    requests = [_replay.ReplayRequest(line=index, body={"model": "auto", "messages": [{"role": "user", "content": "slow"}]}) for index in range(3)]
    run = await _replay.replay(
        requests, gateway=gateway.url, key=fake_gateway.API_KEY, concurrency=2, total_timeout_seconds=0.3, request_timeout_seconds=30
    )
    assert run.timed_out is True
    assert run.outcomes == ()
    assert run.unfinished == 3
    report = _replay.summarize(run, cloud_prices=None)
    assert "the total time bound was reached: 3 requests did not finish" in _replay.format_text(report)


def test_wrong_key_is_reported_as_401(gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": "hello"}])
    assert cli.main(["replay", str(workload), "--gateway", gateway.url, "--key", "sk-wrong"]) == 0
    captured = capsys.readouterr()
    assert "other errors: HTTP 401 invalid_api_key 1" in captured.out
    assert "sk-wrong" not in captured.out + captured.err


def test_unreadable_cost_header_is_counted(gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": "cloud badcost"}])
    assert cli.main(replay_args(workload, gateway)) == 0
    output = capsys.readouterr().out
    assert "spend: 0 USD" in output
    assert "1 answers had no readable X-Sluicegate-Cost-USD header" in output


def test_html_report_is_self_contained(gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path) -> None:
    workload = write_workload(tmp_path / "work.jsonl", WORKLOAD)
    page_path = tmp_path / "report.html"
    prices = ["--cloud-price-input", "2.00", "--cloud-price-output", "8.00"]
    assert cli.main(replay_args(workload, gateway, *prices, "--html", str(page_path))) == 0
    page = page_path.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert page.count("<polyline") == 2
    assert "<script" not in page
    assert "src=" not in page
    assert "href=" not in page
    assert "0.00072" in page
    assert "budget_exceeded" in page


def test_gateway_that_does_not_answer_fails(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": "hello"}])
    assert cli.main(["replay", str(workload), "--gateway", f"http://127.0.0.1:{port}", "--key", "k"]) == 1
    captured = capsys.readouterr()
    assert "no response (ConnectError) 1" in captured.out
    assert "no request got an HTTP response" in captured.err


def test_latency_percentiles_use_nearest_rank() -> None:
    outcomes = tuple(
        _replay.Outcome(
            line=index,
            status=200,
            route="local",
            decision="classified",
            cost_nano=0,
            usage=_pricing.Usage(prompt_tokens=10, completion_tokens=5),
            error=None,
            latency_seconds=index / 100,
            finished_seconds=index / 10,
        )
        for index in range(1, 101)
    )
    run = _replay.ReplayRun(outcomes=outcomes, requested=100, elapsed_seconds=10.0, timed_out=False)
    report = _replay.summarize(run, cloud_prices=None)
    assert report.latency["local"].requests == 100
    assert report.latency["local"].p50_ms == pytest.approx(500.0)
    assert report.latency["local"].p99_ms == pytest.approx(990.0)
    assert report.all_cloud_nano is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("{not json}\n", "line 1: invalid JSON"),
        ('{"prompt": "ok"}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
        ('{"prompt": "ok"}\n\n{"text": "no prompt"}\n', "line 3: the line has neither 'messages'"),
        ('{"messages": []}\n', "line 1: 'messages' must be a non-empty list"),
        ("\n\n", "the file has no requests"),
    ],
)
def test_bad_workload_lines_name_the_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], lines: str, message: str
) -> None:
    workload = tmp_path / "work.jsonl"
    workload.write_text(lines, encoding="utf-8")
    assert cli.main(["replay", str(workload), "--gateway", "http://127.0.0.1:9", "--key", "k"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--gateway", "127.0.0.1:8080"], "invalid gateway URL '127.0.0.1:8080'"),
        (["--concurrency", "0"], "invalid --concurrency 0"),
        (["--limit", "0"], "invalid --limit 0"),
        (["--total-timeout", "0"], "invalid --total-timeout 0.0"),
        (["--cloud-price-input", "2.00"], "pass both --cloud-price-input and --cloud-price-output"),
        (["--cloud-price-input", "2,00", "--cloud-price-output", "8"], "--cloud-price-input: invalid USD amount '2,00'"),
        (["--policy", "p.yaml", "--cloud-price-input", "2", "--cloud-price-output", "8"], "pass either --policy or"),
    ],
)
def test_bad_options_get_clear_errors(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": "hello"}])
    arguments = ["replay", str(workload), "--gateway", "http://127.0.0.1:9", "--key", "k", *options]
    assert cli.main(arguments) == 1
    assert message in capsys.readouterr().err


def test_missing_workload_file_is_named(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert cli.main(["replay", str(missing), "--gateway", "http://127.0.0.1:9", "--key", "k"]) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_completions_url_accepts_base_with_or_without_v1() -> None:
    assert _replay.completions_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1/chat/completions"
    assert _replay.completions_url("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080/v1/chat/completions"


POLICY = """\
apiVersion: sluicegate.io/v1alpha1
kind: RoutePolicy
metadata: {{name: default, namespace: team-a}}
spec:
  local: {{model: small, endpoint: "http://127.0.0.1:8081/v1"}}
{cloud}"""
CLOUD = """\
  cloud:
    provider: openai-compatible
    model: big
    endpoint: http://127.0.0.1:8082/v1
    priceUSDPerMillionTokens: {input: "1.00", output: "4.00"}
"""


def test_policy_prices_the_all_cloud_cost(
    gateway: fake_gateway.FakeGateway, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(cloud=CLOUD), encoding="utf-8")
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": "hello"}, {"prompt": "a cloud question"}])
    assert cli.main(replay_args(workload, gateway, "--policy", str(policy))) == 0
    # Two answers of 100 prompt and 20 output tokens at $1 / $4 per million: $0.00018 each.
    assert "all-cloud cost of the same answers: 0.00036 USD" in capsys.readouterr().out


def test_policy_without_cloud_cannot_price(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(cloud=""), encoding="utf-8")
    workload = write_workload(tmp_path / "work.jsonl", [{"prompt": "hello"}])
    arguments = ["replay", str(workload), "--gateway", "http://127.0.0.1:9", "--key", "k", "--policy", str(policy)]
    assert cli.main(arguments) == 1
    assert "has no cloud route to price the all-cloud comparison" in capsys.readouterr().err
