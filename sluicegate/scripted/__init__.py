"""A scripted OpenAI- and Anthropic-compatible upstream for tests, benchmarks and the demo."""

from sluicegate.scripted._script import Script, UsageMode, flat
from sluicegate.scripted._server import RecordedCall, ScriptedUpstream

__all__ = ["RecordedCall", "Script", "ScriptedUpstream", "UsageMode", "flat"]
