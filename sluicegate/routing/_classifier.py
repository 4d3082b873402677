"""The zero-token classifier: is a chat request simple (local) or complex (cloud)?

The gateway classifies every request before it spends a token, so the classifier uses
regular expressions, substring tests and word sets only, never a model call, and it costs
microseconds (``benchmarks/classifier_bench.py`` measures it). Each test that fires is a
named *signal*. A request is complex when ``complexAtSignals`` signals fire, and the
names travel with the decision so every route can be explained. The signals were checked
against labeled benchmark prompts with ``sluicegate eval routing``, and
``docs/routing-evaluation.md`` states what was tuned on which data.

Which text each signal reads, and why:

- ``long_prompt`` counts the characters of the whole conversation, every role included,
  because all of it is sent upstream: a long context strains a small local model's
  context window and its attention no matter which turn contains most of it.
- ``code``, ``math``, ``clauses``, ``reasoning``, ``multi_hop`` and the policy's
  ``extraComplexPatterns`` read the last user turn only. That turn is the request being
  answered now. System prompts are boilerplate that would fire the same markers on every
  call ("think step by step"), and earlier turns were already answered. A conversation
  without a user turn falls back to its last message with text.
- The built-in markers read only the first and last ``EDGE_CHARS`` characters of that turn.
  Instructions sit at the edges of a message, and pasted material (code, logs,
  documents) fills the middle, so the edges show both the request and the kind of paste.
  This keeps the cost bounded for prompts of any size. Code fences and the extra patterns
  are searched in the whole turn: a fence is a cheap substring test, and users write
  patterns for content that may sit anywhere.
- ``tools`` fires when the request defines tools: a model must choose and call functions
  and read their results, which small local models do poorly.

A caller's hint (the ``X-Sluicegate-Complexity`` header) decides before any signal and is
reported as the signal ``hint:simple`` or ``hint:complex``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sluicegate import api

# Characters read from each end of the last user turn by the built-in markers.
EDGE_CHARS = 1500

# Commas and semicolons in the last user turn that make the `clauses` signal: a request
# built from this many clauses carries many conditions that must all hold at once.
CLAUSES_AT = 5

_PUNCTUATION_TO_SPACE = str.maketrans({character: " " for character in ".,;:!?()[]{}<>\"'`*_=+/\\|~"})

# Words that request reasoning rather than recall.
_REASONING_WORDS = frozenset(
    """
    prove derive analyze analyse tradeoff tradeoffs trade-off trade-offs compare contrast
    evaluate justify critique critically optimize optimise rigorous rigorously deduce
    hypothesize architect refactor debug
    """.split()
)
_REASONING_PHRASES = (
    "step by step",
    "step-by-step",
    "pros and cons",
    "explain why",
    "explain how",
    "root cause",
    "in depth",
    "what would happen",
    "why does",
    "why do ",
    "why is ",
    "why are ",
    "design a ",
    "design an ",
)

# Words and phrases that chain one step onto the result of another.
_MULTI_HOP_WORDS = frozenset("then afterwards subsequently consequently thereafter meanwhile".split())
_MULTI_HOP_PHRASES = (
    "after that",
    "based on the",
    "based on this",
    "based on that",
    "based on your",
    "using the result",
    "using that",
    "which in turn",
    "as a result",
    "given that",
    "first,",
    "second,",
)

# Words that only appear in programs; `#include` keeps its `#` after punctuation removal.
_CODE_WORDS = frozenset(
    """
    def elif lambda println printf nullptr typedef struct const boolean void namespace
    #include stdout stderr localhost json yaml sql regex async await
    """.split()
)
# Program syntax; two distinct ones make the `code` signal, because one alone shows up
# in prose too ("A -> B", "C::D").
_CODE_SYNTAX = (
    ";\n",
    "{\n",
    "}\n",
    "==",
    "!=",
    "=>",
    "->",
    "&&",
    "||",
    "::",
    "</",
    "/>",
    "();",
    "):\n",
    "\ndef ",
    "\nimport ",
    "\nclass ",
    "\nfrom ",
    "\nselect ",
    "traceback (most recent call last)",
    "exception",
)
_CODE_FENCES = ("```", "~~~")

_MATH_WORDS = frozenset(
    """
    integral integrate derivative differentiate equation equations polynomial matrix
    matrices eigenvalue eigenvalues eigenvector theorem lemma logarithm sqrt log ln sin cos
    tan lim modulo probability variance factorial permutations combinations
    """.split()
)
# Two patterns, because a lone character class lets the regex engine scan fast, and
# LaTeX commands are looked for only when the text has a backslash.
_MATH_SYMBOLS = re.compile(r"[∑∫√≤≥≠∞π∂∆±×÷∈∀∃≈]")
_LATEX_COMMANDS = re.compile(r"\\(?:frac|sqrt|sum|int|prod|lim|cdot|times|leq|geq|neq|infty|partial)")
# An operator, then checked for a number, a lone letter (a variable) or a bracket on each side.
_OPERATOR = re.compile(r"[=^*/<>+]")


class Tier(str, enum.Enum):
    """How hard a request is: simple requests go local, complex ones to cloud."""

    SIMPLE = "simple"
    COMPLEX = "complex"


@dataclasses.dataclass(frozen=True)
class Classification:
    """The classifier's decision and the signals behind it.

    ``signals`` names every signal that fired, in a fixed order (``long_prompt``,
    ``code``, ``math``, ``clauses``, ``reasoning``, ``multi_hop``, ``tools``, then
    ``pattern:N`` for ``extraComplexPatterns[N]``), or the single ``hint:<tier>`` when the
    caller's hint decided, in which case ``hinted`` is True.
    """

    tier: Tier
    signals: tuple[str, ...]
    hinted: bool


def classify(
    *,
    messages: Sequence[Mapping[str, Any]],
    settings: api.Classifier,
    tools: Sequence[Any] | None = None,
    hint: Tier | None = None,
) -> Classification:
    """Classify an OpenAI chat request as simple or complex, with zero tokens.

    ``messages`` are OpenAI chat messages: content is a string, a list of parts (text
    parts are read, other parts ignored) or None. ``tools`` is the request's tool
    definitions. ``hint`` is the caller's ``X-Sluicegate-Complexity``, which decides alone.

    >>> classify(messages=[{"role": "user", "content": "Hi!"}], settings=api.Classifier()).tier
    <Tier.SIMPLE: 'simple'>
    """
    if hint is not None:
        return Classification(tier=hint, signals=(f"hint:{hint.value}",), hinted=True)

    texts = [_content_text(message.get("content")) for message in messages]
    total_chars = sum(len(text) for text in texts)
    turn = _last_user_turn(messages, texts)

    signals = _marker_signals(turn)
    if total_chars >= settings.long_prompt_chars:
        signals.insert(0, "long_prompt")
    if tools:
        signals.append("tools")
    if settings.extra_complex_patterns:
        compiled = _compile_patterns(tuple(settings.extra_complex_patterns))
        signals.extend(f"pattern:{index}" for index, pattern in enumerate(compiled) if pattern.search(turn))

    tier = Tier.COMPLEX if len(signals) >= settings.complex_at_signals else Tier.SIMPLE
    return Classification(tier=tier, signals=tuple(signals), hinted=False)


def classify_text(text: str, *, settings: api.Classifier | None = None) -> Classification:
    """Classify one user message, as ``sluicegate classify TEXT`` does.

    >>> classify_text("Prove step by step that sqrt(2) is irrational.").signals
    ('math', 'reasoning')
    """
    return classify(messages=[{"role": "user", "content": text}], settings=settings or api.Classifier())


@functools.lru_cache(maxsize=64)
def _compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    # Policies are few and long-lived, so each distinct list is compiled once per process.
    return tuple(re.compile(pattern) for pattern in patterns)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, Mapping) and part.get("type") == "text"]
        return "\n".join(part for part in parts if isinstance(part, str))
    return ""


def _last_user_turn(messages: Sequence[Mapping[str, Any]], texts: list[str]) -> str:
    for message, text in zip(reversed(messages), reversed(texts)):
        if message.get("role") == "user":
            return text
    for text in reversed(texts):
        if text:
            return text
    return ""


def _marker_signals(turn: str) -> list[str]:
    # A leading newline lets line-start syntax such as "\ndef " match the first line.
    if len(turn) > 2 * EDGE_CHARS:
        window = "\n" + turn[:EDGE_CHARS].lower() + "\n" + turn[-EDGE_CHARS:].lower()
    else:
        window = "\n" + turn.lower()
    words = set(window.translate(_PUNCTUATION_TO_SPACE).split())

    signals = []
    if _has_code(turn, window, words):
        signals.append("code")
    if _has_math(window, words):
        signals.append("math")
    if window.count(",") + window.count(";") >= CLAUSES_AT:
        signals.append("clauses")
    if not _REASONING_WORDS.isdisjoint(words) or any(phrase in window for phrase in _REASONING_PHRASES):
        signals.append("reasoning")
    if _has_multi_hop(window, words):
        signals.append("multi_hop")
    return signals


def _has_code(turn: str, window: str, words: set[str]) -> bool:
    # Fences are searched in the whole turn, because a paste may open far from either edge
    # and a substring test costs little per character.
    if any(fence in turn for fence in _CODE_FENCES):
        return True
    found = 0
    for marker in _CODE_SYNTAX:
        if marker in window:
            found += 1
            if found == 2:
                return True
    return found == 1 and not _CODE_WORDS.isdisjoint(words)


def _has_math(window: str, words: set[str]) -> bool:
    if not _MATH_WORDS.isdisjoint(words) or _MATH_SYMBOLS.search(window):
        return True
    if "\\" in window and _LATEX_COMMANDS.search(window):
        return True
    for match in itertools.islice(_OPERATOR.finditer(window), 32):
        if _is_operand(window, match.start() - 1, step=-1) and _is_operand(window, match.end(), step=1):
            return True
    return False


def _is_operand(text: str, index: int, *, step: int) -> bool:
    # Skip one space, then accept a digit, a bracket, or a single letter (a variable such
    # as the x in "x = 3"), but not a word: "and/or" is prose, not math.
    if 0 <= index < len(text) and text[index] == " ":
        index += step
    if not 0 <= index < len(text):
        return False
    character = text[index]
    if character.isdigit() or character in "()":
        return True
    if not character.isalpha():
        return False
    neighbour = index + step
    return not (0 <= neighbour < len(text) and text[neighbour].isalpha())


def _has_multi_hop(window: str, words: set[str]) -> bool:
    if not _MULTI_HOP_WORDS.isdisjoint(words):
        return True
    # Two or more questions in one turn are a chain of questions.
    if window.count("?") >= 2:
        return True
    return any(phrase in window for phrase in _MULTI_HOP_PHRASES)
