"""``sluicegate eval routing``: scoring the classifier on labeled prompts.

Covers: the confusion matrix, precision, recall, cloud share, quality and PGR on a
hand-made file whose answers are worked out below; the random router's expected values;
the cost estimate in nano-USD; excluding contaminated rows; the sweep and CPT; the
command line in text and JSON; bad files and options getting errors that name the line
and the fix; and the shipped data files, where the default classifier must beat a random
router.
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from sluicegate import api, cli
from sluicegate.evaluation import _routing_eval

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]

# Two signals (math, reasoning): complex, so cloud, under the default settings.
HARD = "Prove step by step that sqrt(2) is irrational."
# No signal: simple, so local.
EASY = "What is the capital of France"

# Rows 1 and 7 are true positives, 2 a false positive, 3, 6 and 9 false negatives, and
# 4, 5 and 8 true negatives. Row 7 is marked contaminated.
ROWS = [
    {"id": "r1", "prompt": HARD, "label": "complex", "strong_correct": True, "weak_correct": False},
    {"id": "r2", "prompt": HARD, "label": "simple", "strong_correct": False, "weak_correct": True},
    {"id": "r3", "prompt": EASY, "label": "complex", "strong_correct": True, "weak_correct": False},
    {"id": "r4", "prompt": EASY, "label": "simple", "strong_correct": True, "weak_correct": True},
    {"id": "r5", "prompt": EASY, "label": "simple", "strong_correct": False, "weak_correct": True},
    {"id": "r6", "prompt": EASY, "label": "complex", "strong_correct": False, "weak_correct": False},
    {"id": "r7", "prompt": HARD, "label": "complex", "strong_correct": True, "weak_correct": False, "routellm_contaminated": True},
    {"id": "r8", "prompt": EASY, "label": "simple", "strong_correct": True, "weak_correct": True},
    {"id": "r9", "prompt": EASY, "label": "complex", "strong_correct": True, "weak_correct": False},
]

# $2 / $8 per million tokens is 2,000,000 / 8,000,000 pico-USD per token.
COSTS = _routing_eval.CostModel.from_prices(
    cloud=api.Price(input="2.00", output="8.00"), local=api.Price(input="0", output="0"), output_tokens=10
)


def cloud_nano(prompt: str, *, input_pico: int = 2_000_000, output_pico: int = 8_000_000, output_tokens: int = 10) -> int:
    tokens = math.ceil(len(prompt) / 4) + 7
    return (tokens * input_pico + output_tokens * output_pico) // 1000


def write_rows(path: pathlib.Path, rows: list[dict[str, object]]) -> pathlib.Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def labeled(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_rows(tmp_path / "labeled.jsonl", ROWS)


def test_confusion_matrix_matches_hand_count(labeled: pathlib.Path) -> None:
    rows, excluded = _routing_eval.load_rows(labeled)
    evaluation = _routing_eval.evaluate(rows, settings=api.Classifier(), costs=COSTS)
    confusion = evaluation.router.confusion
    assert excluded == 0
    assert evaluation.rows == 9
    assert (confusion.true_positive, confusion.false_positive) == (2, 1)
    assert (confusion.false_negative, confusion.true_negative) == (3, 3)
    assert confusion.precision == pytest.approx(2 / 3)
    assert confusion.recall == pytest.approx(2 / 5)
    assert evaluation.router.cloud_share == pytest.approx(3 / 9)


def test_quality_and_pgr_match_hand_count(labeled: pathlib.Path) -> None:
    rows, _ = _routing_eval.load_rows(labeled)
    evaluation = _routing_eval.evaluate(rows, settings=api.Classifier(), costs=COSTS)
    # Strong right on r1 r3 r4 r7 r8 r9, weak right on r2 r4 r5 r8; routed answers right on r1 r4 r5 r7 r8.
    assert evaluation.strong_quality == pytest.approx(6 / 9)
    assert evaluation.weak_quality == pytest.approx(4 / 9)
    assert evaluation.router.quality == pytest.approx(5 / 9)
    assert evaluation.router.pgr == pytest.approx(0.5)


def test_random_router_expected_values(labeled: pathlib.Path) -> None:
    rows, _ = _routing_eval.load_rows(labeled)
    random = _routing_eval.evaluate(rows, settings=api.Classifier(), costs=COSTS).random
    assert random.cloud_share == pytest.approx(1 / 3)
    assert random.pgr == pytest.approx(1 / 3)
    assert random.confusion.true_positive == pytest.approx(5 / 3)
    assert random.confusion.false_positive == pytest.approx(4 / 3)
    assert random.confusion.precision == pytest.approx(5 / 9)
    assert random.confusion.recall == pytest.approx(1 / 3)


def test_costs_follow_the_stated_token_estimate(labeled: pathlib.Path) -> None:
    rows, _ = _routing_eval.load_rows(labeled)
    evaluation = _routing_eval.evaluate(rows, settings=api.Classifier(), costs=COSTS)
    all_cloud = 3 * cloud_nano(HARD) + 6 * cloud_nano(EASY)
    assert evaluation.all_cloud_nano == all_cloud
    assert evaluation.all_local_nano == 0
    assert evaluation.router.cost_nano == 3 * cloud_nano(HARD)
    assert evaluation.cost_saved == pytest.approx(1 - 3 * cloud_nano(HARD) / all_cloud)
    # A random router at share 1/3 is expected to spend a third of all-cloud, rounded up.
    assert evaluation.random.cost_nano == -(-all_cloud // 3)


def test_contaminated_rows_can_be_excluded(labeled: pathlib.Path) -> None:
    rows, excluded = _routing_eval.load_rows(labeled, exclude_contaminated=True)
    evaluation = _routing_eval.evaluate(rows, settings=api.Classifier(), costs=COSTS, excluded=excluded)
    assert excluded == 1
    assert evaluation.rows == 8
    assert evaluation.router.confusion.true_positive == 1
    # Without r7 the routed answers are right exactly as often as the weak model's.
    assert evaluation.router.pgr == pytest.approx(0.0)


def test_pgr_is_undefined_when_models_tie(tmp_path: pathlib.Path) -> None:
    rows = [{"prompt": EASY, "label": "simple", "strong_correct": True, "weak_correct": True}]
    loaded, _ = _routing_eval.load_rows(write_rows(tmp_path / "tie.jsonl", rows))
    evaluation = _routing_eval.evaluate(loaded, settings=api.Classifier(), costs=COSTS)
    assert evaluation.router.pgr is None
    assert evaluation.router.confusion.recall is None
    assert evaluation.router.confusion.precision is None


def test_sweep_frontier_rises(labeled: pathlib.Path) -> None:
    rows, _ = _routing_eval.load_rows(labeled)
    sweep = _routing_eval.sweep(rows, settings=api.Classifier(), costs=COSTS)
    shares = [point.cloud_share for point in sweep.frontier]
    pgrs = [point.pgr for point in sweep.frontier]
    assert shares[0] == 0.0
    assert pgrs[0] == 0.0
    assert shares == sorted(shares)
    assert all(later > earlier for earlier, later in zip(pgrs, pgrs[1:]))  # type: ignore[operator]
    assert len({(point.cloud_share, point.pgr) for point in sweep.points}) == len(sweep.points)
    # The frontier point at share 1/3 is the default classifier's, with PGR 0.5 (see above).
    assert any(point.cloud_share == pytest.approx(1 / 3) and point.pgr == pytest.approx(0.5) for point in sweep.frontier)


def test_cost_to_perform_interpolates_between_frontier_points() -> None:
    def point(share: float, pgr: float) -> _routing_eval.RouterResult:
        confusion = _routing_eval.Confusion(true_positive=0, false_positive=0, false_negative=0, true_negative=0)
        return _routing_eval.RouterResult(confusion=confusion, cloud_share=share, quality=0.0, pgr=pgr, cost_nano=0)

    frontier = (point(0.0, 0.0), point(0.2, 0.4), point(0.6, 0.9), point(1.0, 1.0))
    sweep = _routing_eval.Sweep(points=frontier, frontier=frontier)
    assert sweep.cost_to_perform(0.5) == pytest.approx(0.2 + 0.1 / 0.5 * 0.4)
    assert sweep.cost_to_perform(0.8) == pytest.approx(0.2 + 0.4 / 0.5 * 0.4)
    assert sweep.cost_to_perform(0.4) == pytest.approx(0.2)
    assert _routing_eval.Sweep(points=frontier[:2], frontier=frontier[:2]).cost_to_perform(0.5) is None


def test_cli_text_report(labeled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "routing", str(labeled)]) == 0
    output = capsys.readouterr().out
    assert "rows: 9" in output
    table = {" ".join(line.split()[:-2]): line.split()[-2:] for line in output.splitlines() if line.startswith("  ")}
    assert table["routed cloud"] == ["2", "1"]
    assert table["routed local"] == ["3", "3"]
    assert table["PGR (quality recovered)"] == ["50.0%", "33.3%"]
    assert table["precision"] == ["66.7%", "55.6%"]
    assert "defaults; pass --policy for your prices" in output


def test_cli_json_report_with_sweep(labeled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "routing", str(labeled), "--format", "json", "--sweep", "--exclude-contaminated"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["rows"] == 8
    assert document["excludedContaminated"] == 1
    assert document["router"]["confusion"] == {"truePositive": 1, "falsePositive": 1, "falseNegative": 3, "trueNegative": 3}
    assert document["random"]["pgr"] == pytest.approx(0.25)
    assert set(document["sweep"]["costToPerform"]) == {"50%", "80%"}
    assert any(point["frontier"] for point in document["sweep"]["points"])


def test_cli_uses_policy_prices_and_settings(labeled: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        """\
apiVersion: sluicegate.io/v1alpha1
kind: RoutePolicy
metadata: {name: default, namespace: team-a}
spec:
  local: {model: small, endpoint: "http://127.0.0.1:8081/v1"}
  cloud:
    provider: openai-compatible
    model: big
    endpoint: http://127.0.0.1:8082/v1
    priceUSDPerMillionTokens: {input: "1.00", output: "4.00"}
  classifier: {complexAtSignals: 1}
""",
        encoding="utf-8",
    )
    assert cli.main(["eval", "routing", str(labeled), "--policy", str(policy), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["classifier"]["complexAtSignals"] == 1
    # The policy's $1 / $4 per million, with the command's default of 200 output tokens.
    prices = {"input_pico": 1_000_000, "output_pico": 4_000_000, "output_tokens": 200}
    expected = 3 * cloud_nano(HARD, **prices) + 6 * cloud_nano(EASY, **prices)
    assert api.parse_usd(document["allCloudCostUSD"], max_decimals=9) == expected


def test_cli_rejects_policy_without_cloud(labeled: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: sluicegate.io/v1alpha1\nkind: RoutePolicy\nmetadata: {name: p, namespace: team-a}\n"
        "spec: {local: {model: small, endpoint: 'http://127.0.0.1:8081/v1'}}\n",
        encoding="utf-8",
    )
    assert cli.main(["eval", "routing", str(labeled), "--policy", str(policy)]) == 1
    assert "has no cloud route" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"prompt": "a", "label": "simple", "strong_correct": true, "weak_correct": true}\n{oops\n', "line 2: invalid JSON"),
        ('{"prompt": "a", "label": "simple"}\n', "line 1: missing field 'strong_correct', 'weak_correct'"),
        ('{"prompt": "a", "label": "hard", "strong_correct": true, "weak_correct": true}\n', "line 1: invalid label 'hard'"),
        ('{"prompt": 7, "label": "simple", "strong_correct": true, "weak_correct": true}\n', "line 1: field 'prompt' is 7; expected a str"),
        ('{"prompt": "a", "label": "simple", "strong_correct": "yes", "weak_correct": true}\n', "field 'strong_correct' is 'yes'; expected true or false"),
        ('"just a string"\n', "line 1: expected a JSON object, got str"),
        ("\n", "no rows to evaluate"),
    ],
)
def test_bad_rows_name_the_line_and_fix(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], lines: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(lines, encoding="utf-8")
    assert cli.main(["eval", "routing", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_all_rows_excluded_is_an_error(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_rows(tmp_path / "only.jsonl", [ROWS[6]])
    assert cli.main(["eval", "routing", str(path), "--exclude-contaminated"]) == 1
    assert "no rows to evaluate (1 excluded as contaminated)" in capsys.readouterr().err


def test_missing_file_is_named(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert cli.main(["eval", "routing", str(missing)]) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_negative_output_tokens_are_rejected(labeled: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "routing", str(labeled), "--output-tokens", "-1"]) == 1
    assert "invalid --output-tokens -1" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["routellm_gsm8k", "routellm_mmlu"])
def test_default_classifier_beats_random_router_on_data(name: str) -> None:
    rows, _ = _routing_eval.load_rows(REPOSITORY / "data" / f"{name}.jsonl", exclude_contaminated=True)
    evaluation = _routing_eval.evaluate(rows, settings=api.Classifier(), costs=COSTS)
    assert evaluation.router.pgr is not None
    assert evaluation.random.pgr is not None
    assert evaluation.router.cloud_share > 0
    assert evaluation.router.pgr > evaluation.random.pgr


@pytest.mark.parametrize("name", ["routellm_gsm8k_sample", "routellm_mmlu_sample"])
def test_package_samples_load(name: str) -> None:
    rows, _ = _routing_eval.load_rows(REPOSITORY / "sluicegate" / "data" / f"{name}.jsonl")
    assert len(rows) == 100
    assert {row.label.value for row in rows} == {"simple", "complex"}
