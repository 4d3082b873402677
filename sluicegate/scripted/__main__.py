"""Run a scripted upstream until interrupted: ``python -m sluicegate.scripted --port 9000``."""

from __future__ import annotations

import argparse
import threading

from sluicegate.scripted import Script, ScriptedUpstream


def main() -> None:
    """Serve the default script on 127.0.0.1 until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m sluicegate.scripted", description="Serve a scripted OpenAI/Anthropic-compatible upstream on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--completion-tokens", type=int, default=None, help="completion tokens to report per answer")
    args = parser.parse_args()
    upstream = ScriptedUpstream(default=Script(completion_tokens=args.completion_tokens), port=args.port).start()
    print(upstream.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        upstream.stop()


if __name__ == "__main__":
    main()
