#!/bin/sh
# Regenerate docs/screenshots/*.png from the real windows (sets everything up first).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python scripts/screenshots.py "$@"
