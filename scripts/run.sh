#!/bin/sh
# Install everything (if needed) and start hvmanager. Extra arguments go to hvmanager.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
    cat >&2 <<'HINT'
run: no display found (DISPLAY and WAYLAND_DISPLAY are unset). Either
  - start it on a virtual screen:        xvfb-run -a scripts/run.sh
  - or render offscreen (nothing shown): QT_QPA_PLATFORM=offscreen scripts/run.sh
HINT
    exit 2
fi
exec .venv/bin/hvmanager "$@"
