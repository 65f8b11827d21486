#!/bin/sh
# Start the libvirt daemons when they are not running (there may be no systemd).
# Debian 12 ships the monolithic libvirtd; newer libvirt may use modular daemons instead.
set -eu
start() { pgrep -x "$1" >/dev/null 2>&1 || "$1" -d; }
if [ "$(id -u)" -ne 0 ]; then
    echo "start-daemons: not root; assuming the libvirt daemons are managed by the system" >&2
    exit 0
fi
start virtlogd
if command -v libvirtd >/dev/null 2>&1; then
    start libvirtd
else
    for daemon in virtqemud virtnetworkd virtstoraged virtnodedevd virtsecretd virtinterfaced virtnwfilterd; do
        command -v "$daemon" >/dev/null 2>&1 && start "$daemon"
    done
fi
for _ in $(seq 1 100); do
    [ -S /run/libvirt/libvirt-sock ] || [ -S /run/libvirt/virtqemud-sock ] && exit 0
    sleep 0.1
done
echo "start-daemons: the libvirt socket did not appear" >&2
exit 1
