#!/bin/sh
# Start the libvirt daemons when they are not running (there may be no systemd).
# Debian 12 ships the monolithic libvirtd; newer libvirt may use modular daemons instead.
#
# The QEMU driver daemon runs under `tini -s` (a child subreaper) when tini is installed: QEMU
# processes are orphans reparented to the nearest subreaper, and libvirt waits for a killed QEMU to
# disappear before it reports the VM off. Where PID 1 is not a real init (containers, CI sandboxes)
# zombies linger until PID 1 reaps them: a SIGKILLed VM was reported off after 1.2-2 s instead of
# 40 ms. With systemd this is moot and `systemctl start libvirtd` is the way.
set -eu
start() { pgrep -x "$1" >/dev/null 2>&1 || "$1" -d; }
start_reaped() {
    pgrep -x "$1" >/dev/null 2>&1 && return 0
    if command -v tini >/dev/null 2>&1; then
        setsid tini -s -- "$1" </dev/null >/dev/null 2>&1 &
    else
        "$1" -d
    fi
}
if [ "$(id -u)" -ne 0 ]; then
    echo "start-daemons: not root; assuming the libvirt daemons are managed by the system" >&2
    exit 0
fi
start virtlogd
if command -v libvirtd >/dev/null 2>&1; then
    start_reaped libvirtd
else
    start_reaped virtqemud
    for daemon in virtnetworkd virtstoraged virtnodedevd virtsecretd virtinterfaced virtnwfilterd; do
        if command -v "$daemon" >/dev/null 2>&1; then start "$daemon"; fi
    done
fi
for _ in $(seq 1 100); do
    if [ -S /run/libvirt/libvirt-sock ] || [ -S /run/libvirt/virtqemud-sock ]; then exit 0; fi
    sleep 0.1
done
echo "start-daemons: the libvirt socket did not appear" >&2
exit 1
