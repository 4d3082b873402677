"""The zero-token classifier and ``sluicegate classify``.

Covers:

- which signal each kind of prompt fires;
- the caller's hint deciding first, and extra patterns from the policy;
- the complexAtSignals and longPromptChars thresholds, and tool definitions;
- which text of a conversation each signal reads;
- the command line with and without a RoutePolicy file.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from sluicegate import api, cli, routing
from sluicegate.routing import _classifier

DEFAULTS = api.Classifier()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is the capital of France", ()),
        ("Thanks, that works!", ()),
        ("Fix this:\n```python\nprint('hi')\n```", ("code",)),
        ("Why is this slow?\ndef total(xs):\n    return sum(xs) == 0;\n", ("code", "reasoning")),
        ("if (a == b && c) { run(); }\n", ("code",)),
        ("Solve for x: 3x^2 + 2 = 14", ("math",)),
        ("Compute the integral of x from 0 to 1", ("math",)),
        ("Is ∑ 1/n finite?", ("math",)),
        ("Bring cheese and/or wine.", ()),
        ("Bring apples, pears, plums, figs, dates and limes.", ()),
        ("Bring apples, pears, plums, figs, dates, nuts and limes.", ("clauses",)),
        ("Prove that there are infinitely many primes.", ("reasoning",)),
        ("Walk me through it step by step.", ("reasoning",)),
        ("Explain the trade-offs between B-trees and LSM trees.", ("reasoning",)),
        ("Translate the text, then summarize it.", ("multi_hop",)),
        ("Who wrote Hamlet? When was it first staged?", ("multi_hop",)),
        ("Find the author. Based on the result, list the other books.", ("multi_hop",)),
    ],
)
def test_prompt_fires_expected_signals(text: str, expected: tuple[str, ...]) -> None:
    result = routing.classify_text(text)
    assert result.signals == expected
    assert result.hinted is False


def test_two_signals_make_complex_by_default() -> None:
    result = routing.classify_text("Prove step by step that sqrt(2) is irrational.")
    assert result.signals == ("math", "reasoning")
    assert result.tier is routing.Tier.COMPLEX


def test_one_signal_stays_simple_by_default() -> None:
    result = routing.classify_text("Prove that there are infinitely many primes.")
    assert result.tier is routing.Tier.SIMPLE


def test_hint_complex_decides_without_signals() -> None:
    result = routing.classify(
        messages=[{"role": "user", "content": "hi"}], settings=DEFAULTS, hint=routing.Tier.COMPLEX
    )
    assert result == routing.Classification(tier=routing.Tier.COMPLEX, signals=("hint:complex",), hinted=True)


def test_hint_simple_overrides_complex_signals() -> None:
    result = routing.classify(
        messages=[{"role": "user", "content": "Prove step by step that sqrt(2) is irrational."}],
        settings=DEFAULTS,
        hint=routing.Tier.SIMPLE,
    )
    assert result.tier is routing.Tier.SIMPLE
    assert result.signals == ("hint:simple",)
    assert result.hinted is True


def test_extra_patterns_each_add_a_signal() -> None:
    settings = api.Classifier(extra_complex_patterns=["(?i)contract", "clause \\d+", "never matches \\d{9}"])
    result = routing.classify_text("Review this Contract, especially clause 7.", settings=settings)
    assert result.signals == ("pattern:0", "pattern:1")
    assert result.tier is routing.Tier.COMPLEX


def test_extra_patterns_are_case_sensitive_unless_flagged() -> None:
    settings = api.Classifier(extra_complex_patterns=["contract"])
    assert routing.classify_text("A CONTRACT", settings=settings).signals == ()
    assert routing.classify_text("a contract", settings=settings).signals == ("pattern:0",)


def test_extra_patterns_compile_once_per_list() -> None:
    first = _classifier._compile_patterns(("alpha", "beta"))
    second = _classifier._compile_patterns(("alpha", "beta"))
    assert first is second
    assert [pattern.pattern for pattern in first] == ["alpha", "beta"]


def test_complex_at_one_signal() -> None:
    settings = api.Classifier(complex_at_signals=1)
    assert routing.classify_text("Prove Fermat's little theorem.", settings=settings).tier is routing.Tier.COMPLEX
    assert routing.classify_text("Hello there", settings=settings).tier is routing.Tier.SIMPLE


def test_complex_at_three_signals_needs_three() -> None:
    settings = api.Classifier(complex_at_signals=3)
    two = routing.classify_text("Prove step by step that sqrt(2) is irrational.", settings=settings)
    assert len(two.signals) == 2
    assert two.tier is routing.Tier.SIMPLE
    three = routing.classify_text("Prove step by step that sqrt(2) is irrational, then generalize it.", settings=settings)
    assert three.signals == ("math", "reasoning", "multi_hop")
    assert three.tier is routing.Tier.COMPLEX


def test_long_prompt_threshold_is_inclusive() -> None:
    settings = api.Classifier(long_prompt_chars=10)
    assert routing.classify_text("a" * 10, settings=settings).signals == ("long_prompt",)
    assert routing.classify_text("a" * 9, settings=settings).signals == ()


def test_long_prompt_counts_every_message() -> None:
    settings = api.Classifier(long_prompt_chars=100)
    messages = [
        {"role": "system", "content": "s" * 40},
        {"role": "user", "content": "u" * 30},
        {"role": "assistant", "content": "a" * 30},
        {"role": "user", "content": "ok"},
    ]
    assert routing.classify(messages=messages, settings=settings).signals == ("long_prompt",)
    assert routing.classify(messages=messages[1:], settings=settings).signals == ()


def test_tools_fire_a_signal() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "Look up order 42"}]
    assert routing.classify(messages=messages, settings=DEFAULTS, tools=tools).signals == ("tools",)
    assert routing.classify(messages=messages, settings=DEFAULTS, tools=[]).signals == ()


def test_markers_read_the_last_user_turn_only() -> None:
    messages = [
        {"role": "system", "content": "Think step by step and prove every claim."},
        {"role": "user", "content": "Compare these, then analyze the trade-offs."},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "Thanks"},
    ]
    assert routing.classify(messages=messages, settings=DEFAULTS).signals == ()


def test_text_parts_are_read_and_other_parts_ignored() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "Prove step by step"},
                {"type": "text", "text": "that sqrt(2) is irrational."},
            ],
        }
    ]
    assert routing.classify(messages=messages, settings=DEFAULTS).signals == ("math", "reasoning")


def test_assistant_tool_call_without_content_is_accepted() -> None:
    messages = [
        {"role": "user", "content": "What is 2^10?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "1", "content": "1024"},
    ]
    assert routing.classify(messages=messages, settings=DEFAULTS).signals == ("math",)


def test_conversation_without_user_turn_reads_last_text() -> None:
    messages = [{"role": "system", "content": "Prove step by step that 2^2 = 4."}, {"role": "assistant", "content": None}]
    assert routing.classify(messages=messages, settings=DEFAULTS).signals == ("math", "reasoning")


def test_long_turn_middle_is_not_read() -> None:
    filler = "lorem ipsum dolor sit amet " * 200
    middle = filler + " prove it " + filler
    edge = filler + filler + " prove it"
    assert "reasoning" not in routing.classify_text(middle).signals
    assert "reasoning" in routing.classify_text(edge).signals


def test_code_fence_found_anywhere() -> None:
    filler = "lorem ipsum dolor sit amet " * 200
    assert routing.classify_text(filler + "```\nx\n```" + filler).signals == ("long_prompt", "code")


def test_signals_keep_their_documented_order() -> None:
    settings = api.Classifier(long_prompt_chars=20, extra_complex_patterns=["irrational"])
    tools = [{"type": "function", "function": {"name": "f"}}]
    text = "```\nx = 1\n```\nProve step by step that sqrt(2) is irrational, then check it, again, and again, and again, and again."
    result = routing.classify(messages=[{"role": "user", "content": text}], settings=settings, tools=tools)
    assert result.signals == ("long_prompt", "code", "math", "clauses", "reasoning", "multi_hop", "tools", "pattern:0")


def test_exported_names() -> None:
    assert sorted(routing.__all__) == sorted(set(routing.__all__))
    for name in ("Classification", "Tier", "classify", "classify_text"):
        assert name in routing.__all__


POLICY = """\
apiVersion: sluicegate.io/v1alpha1
kind: RoutePolicy
metadata: {{name: default, namespace: {namespace}}}
spec:
  local: {{model: small, endpoint: "http://127.0.0.1:8081/v1"}}
{cloud}  classifier: {{complexAtSignals: 1, longPromptChars: 5000, extraComplexPatterns: ["(?i)contract"]}}
"""
CLOUD = """\
  cloud:
    provider: openai-compatible
    model: big
    endpoint: http://127.0.0.1:8082/v1
    priceUSDPerMillionTokens: {input: "2.00", output: "8.00"}
"""


def write_policy(path: pathlib.Path, *namespaces: str, cloud: bool = True) -> pathlib.Path:
    documents = [POLICY.format(namespace=namespace, cloud=CLOUD if cloud else "") for namespace in namespaces]
    path.write_text("---\n".join(documents), encoding="utf-8")
    return path


def test_cli_prints_route_and_signals(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classify", "Prove step by step that sqrt(2) is irrational."]) == 0
    output = capsys.readouterr().out
    assert "route: cloud (complex)" in output
    assert "signals: math, reasoning (2 of 2 needed for cloud)" in output


def test_cli_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classify", "--format", "json", "hello"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {"route": "local", "tier": "simple", "signals": [], "complexAtSignals": 2}


def test_cli_uses_policy_settings(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "team-a")
    assert cli.main(["classify", "--policy", str(policy), "--format", "json", "Sign the CONTRACT"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["route"] == "cloud"
    assert document["signals"] == ["pattern:0"]
    assert document["complexAtSignals"] == 1


def test_cli_needs_namespace_for_several_policies(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "team-a", "team-b")
    assert cli.main(["classify", "--policy", str(policy), "hello"]) == 1
    error = capsys.readouterr().err
    assert "team-a, team-b" in error
    assert "--namespace" in error
    assert cli.main(["classify", "--policy", str(policy), "--namespace", "team-b", "hello"]) == 0


def test_cli_rejects_unknown_namespace(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "team-a")
    assert cli.main(["classify", "--policy", str(policy), "--namespace", "team-z", "hello"]) == 1
    error = capsys.readouterr().err
    assert "'team-z'" in error
    assert "team-a" in error


def test_cli_reports_missing_policy_file(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert cli.main(["classify", "--policy", str(missing), "hello"]) == 1
    assert str(missing) in capsys.readouterr().err


def test_cli_policy_without_cloud_serves_local(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "team-a", cloud=False)
    assert cli.main(["classify", "--policy", str(policy), "Prove it"]) == 0
    output = capsys.readouterr().out
    assert "route: local (complex)" in output
    assert "no cloud route" in output
