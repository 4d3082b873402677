#!/usr/bin/env bash
# Run sluicegate's end-to-end test on a throwaway kind cluster.
#
# Needs: Docker (running), kind (https://kind.sigs.k8s.io) and the test dependencies
# (pip install -e '.[test]'). The test creates a cluster named sluicegate-e2e-<random>,
# applies crds/, runs the operator in a thread with a SQLite ledger, and deletes the
# cluster at the end. To reuse a cluster you made with `kind create cluster --name NAME`,
# run: SLUICEGATE_KIND_CLUSTER=NAME scripts/kind-e2e.sh
#
# Extra arguments go to pytest, e.g. scripts/kind-e2e.sh -x -k publishes
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v kind >/dev/null 2>&1; then
  echo "kind-e2e: kind is not installed; see https://kind.sigs.k8s.io/docs/user/quick-start/#installation" >&2
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  echo "kind-e2e: cannot reach the Docker daemon; start Docker (or check your permissions) and retry" >&2
  exit 2
fi

exec python -m pytest tests/kind -v -rs --timeout 1200 "$@"
