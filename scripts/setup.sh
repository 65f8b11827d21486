#!/bin/sh
# Set up everything hvmanager needs on Debian 12/13, idempotently (a second run takes seconds):
# Debian packages, /dev/kvm permissions, a virtualenv with the package and its test extras, and the
# libvirt daemons. Usage: scripts/setup.sh [--test]   (--test adds what only the test suite needs)
set -eu
cd "$(dirname "$0")/.."

RUNTIME_PACKAGES="libvirt-daemon-system libvirt-clients libvirt-dev qemu-system-x86 qemu-utils ovmf
  dnsmasq-base iptables iproute2 pkg-config gcc python3-dev python3-venv
  libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0
  libxcb-image0 xvfb xauth tini"
TEST_PACKAGES="busybox-static cpio"

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing_packages() {
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || printf '%s ' "$pkg"
    done
}

install_packages() {
    # shellcheck disable=SC2086
    missing=$(missing_packages $RUNTIME_PACKAGES $([ "$WITH_TESTS" = 1 ] && echo $TEST_PACKAGES))
    if [ -z "$missing" ]; then
        say "Debian packages: all present"
        return
    fi
    say "installing Debian packages: $missing"
    as_root apt-get update -q
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}

fix_kvm_permissions() {
    # What Debian's udev rules do on a normal host; without udev /dev/kvm stays root-only and
    # libvirt re-probes QEMU (seconds) on every call that parses domain XML.
    [ -e /dev/kvm ] || return 0
    if [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
        say "giving /dev/kvm group kvm and mode 0660"
        as_root chgrp kvm /dev/kvm && as_root chmod 0660 /dev/kvm
    fi
}

make_venv() {
    python=${PYTHON:-python3}
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        say "Python 3.11 or newer is needed ($python is $("$python" --version 2>&1))"; exit 1; }
    [ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
    stamp=".venv/.setup-stamp"
    want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing hvmanager and its test extras into .venv"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e '.[test]'
        echo "$want" > "$stamp"
    else
        say "virtualenv: up to date"
    fi
}

WITH_TESTS=0
[ "${1:-}" = "--test" ] && WITH_TESTS=1
install_packages
fix_kvm_permissions
make_venv
if [ "$(id -u)" -eq 0 ]; then
    scripts/start-daemons.sh
    say "libvirt daemons: running"
else
    say "not root: make sure your user may use qemu:///system (group libvirt) and the daemons run"
fi
