#!/bin/sh
# Regenerate docs/screenshots/*.png from the real windows (sets everything up first).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/python scripts/screenshots.py "$@"
# The Virtual Switch Manager and the Switch Monitor in processes of their own: each makes its own
# switches and guests (and the manager's External switch a veth and netns), removed at the end.
.venv/bin/python scripts/screenshot_network.py
exec .venv/bin/python scripts/screenshot_monitor.py
