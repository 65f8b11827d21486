#!/bin/sh
# Install everything (if needed) and run the whole test suite: the layer contracts
# (import-linter), ruff, mypy, then pytest (which starts the libvirt daemons and boots real guests
# under software emulation). Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --test
. .venv/bin/activate
echo "== import-linter"; lint-imports
echo "== ruff"; ruff check hvmanager tests bench scripts
echo "== mypy"; mypy
echo "== pytest"
status=0
QT_QPA_PLATFORM=offscreen pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests: check the test paths and markers" >&2
    exit 1
fi
exit "$status"
