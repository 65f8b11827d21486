#!/bin/busybox sh
# /init of the hvmanager test guest (busybox sh, runs as PID 1).
#
# Built into the initramfs by tests/support/guest.py; any change to this file
# changes the guest's cache key, so the next build_test_guest() rebuilds.
#
# Everything the tests look for is a line starting with "HVTEST: " on
# /dev/console, which is the serial port ttyS0 (the kernel command line ends
# with console=ttyS0, and the last console= is the one /dev/console means).
#
# Sequence:
#   mount proc/sysfs/devtmpfs, load the modules from /etc/hvtest/modules
#   HVTEST: module <name> failed      (only for a module that did not load)
#   HVTEST: booted
#   HVTEST: mem <MemTotal kB>
#   HVTEST: disks <entries of /sys/block, without loop/ram/zram>
#   hvtest.* options from /proc/cmdline, in their order (see below)
#   acpid -d -c /etc/acpi &           (power button -> /etc/acpi/PWRF/00000080,
#                                      which prints "HVTEST: acpi power button"
#                                      and runs poweroff -f)
#   HVTEST: ready
#   HVTEST: tick <n> uptime <seconds>  every hvtest.tick seconds, forever
#
# Kernel command line options: every word "hvtest.<key>=<value>" (or a bare
# "hvtest.<key>") calls the shell function hvtest_opt_<key> with <value> as
# its argument, where "." and "-" in <key> become "_". Unknown keys print
# "HVTEST: unknown option <key>". To add a command, define a new
# hvtest_opt_<key> function below (and document it in guest.py's docstring);
# it runs after the modules are loaded and before acpid starts and
# "HVTEST: ready" is printed, so a long-running one should background itself.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /var/log /var/run
/bin/busybox --install -s

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Make sure stdin/stdout/stderr are the console (ttyS0) even if the kernel
# could not open /dev/console for us before devtmpfs was mounted.
exec </dev/console >/dev/console 2>&1

say() {
    echo "HVTEST: $*"
}

TICK=1

# --- kernel command line options -------------------------------------------

# hvtest.tick=<seconds>: interval of the tick lines (default 1, may be a
# fraction such as 0.5).
hvtest_opt_tick() {
    TICK=${1:-1}
}

# hvtest.ip=<addr/prefix>: configure eth0 with that address and bring it up.
# Prints "HVTEST: ip <addr/prefix>", or "HVTEST: ip failed <addr/prefix>".
hvtest_opt_ip() {
    i=0
    while [ ! -e /sys/class/net/eth0 ] && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    ip link set lo up
    if ip addr add "$1" dev eth0 && ip link set eth0 up; then
        say "ip $1"
    else
        say "ip failed $1"
    fi
}

# hvtest.writer=<dev>: every tick also writes a 512-byte record "HVTICK <n> <mark>"
# at sector <n> of /dev/<dev> and flushes it to the virtual disk; <mark> is the
# first line of /dev/<markdev> (hvtest.markdev=, default sr0: a DVD whose file
# the host rewrites while the guest runs), read with O_DIRECT on every tick.
# The tick line then ends with "mark <mark>".
WRITER=
MARKDEV=sr0
hvtest_opt_writer() {
    WRITER=$1
}

hvtest_opt_markdev() {
    MARKDEV=$1
}

# hvtest.mountdisk=<dev>: make an ext2 file system on the first 64 MiB of
# /dev/<dev> (busybox mke2fs; the kernel's built-in ext4 driver mounts ext2) and
# mount it on /mnt/<dev>. qemu-ga's fsfreeze freezes block-backed file systems
# only (not this initramfs, a tmpfs or devtmpfs): this gives it one. Afterwards
# the periodic writeback of dirty pages is turned off, so a file written there
# stays in the page cache, off the virtual disk, until something syncs or
# freezes the file system: the disk image then tells whether the guest flushed.
# Prints "HVTEST: mounted /dev/<dev> on /mnt/<dev>" or
# "HVTEST: mount failed <dev> <reason>".
MOUNTDISK_KB=65536
hvtest_opt_mountdisk() {
    if [ ! -b "/dev/$1" ]; then
        say "mount failed $1 no block device /dev/$1"
        return
    fi
    if ! out=$(mke2fs -F "/dev/$1" "$MOUNTDISK_KB" 2>&1); then
        say "mount failed $1 mke2fs: $(echo "$out" | tail -n 1)"
        return
    fi
    mkdir -p "/mnt/$1"
    if ! out=$(mount -t ext2 "/dev/$1" "/mnt/$1" 2>&1); then
        say "mount failed $1 mount: $(echo "$out" | tail -n 1)"
        return
    fi
    sync
    echo 0 >/proc/sys/vm/dirty_writeback_centisecs
    say "mounted /dev/$1 on /mnt/$1"
}

# hvtest.agent: start the QEMU guest agent (qemu-ga from the initramfs) on the
# virtio-serial port named org.qemu.guest_agent.0 (libvirt's guest agent
# channel; virtio_console makes /dev/vportNpM and names it in sysfs). There is
# no udev, so make the /dev/virtio-ports/<name> link its rules would. The agent
# runs with the fsfreeze hook /etc/hvtest/fsfreeze-hook ("HVTEST: fsfreeze
# freeze|thaw" around each freeze). "HVTEST: agent started" once qemu-ga holds
# the port open (libvirt then shows the channel connected), else
# "HVTEST: agent failed <reason>".
AGENT_PORT=org.qemu.guest_agent.0

# (No glob: the options run with "set -f".)
agent_port_device() {
    for device in $(ls /sys/class/virtio-ports 2>/dev/null); do
        if [ "$(cat "/sys/class/virtio-ports/$device/name" 2>/dev/null)" = "$AGENT_PORT" ]; then
            echo "$device"
            return 0
        fi
    done
    return 1
}

hvtest_opt_agent() {
    port=
    i=0
    while [ "$i" -lt 100 ]; do
        port=$(agent_port_device) && [ -c "/dev/$port" ] && break
        port=
        sleep 0.1
        i=$((i + 1))
    done
    if [ -z "$port" ]; then
        say "agent failed no virtio-serial port $AGENT_PORT"
        return
    fi
    mkdir -p /dev/virtio-ports
    ln -sf "../$port" "/dev/virtio-ports/$AGENT_PORT"
    qemu-ga -m virtio-serial -p "/dev/virtio-ports/$AGENT_PORT" -F/etc/hvtest/fsfreeze-hook \
        -t /run -f /run/qemu-ga.pid </dev/null &
    agent_pid=$!
    i=0
    while [ "$i" -lt 100 ]; do
        if ! kill -0 "$agent_pid" 2>/dev/null; then
            wait "$agent_pid"
            say "agent failed qemu-ga exited with status $?"
            return
        fi
        if ls -l "/proc/$agent_pid/fd" 2>/dev/null | grep -q "/dev/$port\$"; then
            say "agent started"
            return
        fi
        sleep 0.1
        i=$((i + 1))
    done
    say "agent failed qemu-ga did not open /dev/$port"
}

# hvtest.watchdisks: print "HVTEST: block sda=<sectors> sdb=<sectors> ..." (the
# sd*, vd* and hd* entries of /sys/block with their size in 512-byte sectors,
# in ls order; "HVTEST: block" when there are none) at once, and again
# whenever that set or a size changes (polled every 0.5 s in the background):
# a hot-added, hot-removed or resized disk shows up on the serial console.
block_sizes() {
    line=block
    for dev in $(ls /sys/block 2>/dev/null); do
        case "$dev" in
            sd* | vd* | hd*) line="$line $dev=$(cat "/sys/block/$dev/size" 2>/dev/null)" ;;
        esac
    done
    echo "$line"
}

hvtest_opt_watchdisks() {
    sizes=$(block_sizes)
    say "$sizes"
    (
        prev=$sizes
        while :; do
            sleep 0.5
            cur=$(block_sizes)
            if [ "$cur" != "$prev" ]; then
                say "$cur"
                prev=$cur
            fi
        done
    ) &
}

# hvtest.ping=<addr>[,<addr>...]: in the background, ping each address once a
# second (busybox ping, 1 s timeout) and print "HVTEST: ping <addr> up" or
# "HVTEST: ping <addr> down" on the first result and whenever it changes.
ping_watch() {
    state=
    while :; do
        if ping -c 1 -W 1 "$1" >/dev/null 2>&1; then now=up; else now=down; fi
        if [ "$now" != "$state" ]; then
            say "ping $1 $now"
            state=$now
        fi
        sleep 1
    done
}

hvtest_opt_ping() {
    for addr in $(echo "$1" | tr , ' '); do
        ping_watch "$addr" &
    done
}

# hvtest.watchnet: print "HVTEST: net eth0=<mac>/<rx queues> eth1=..." (the
# entries of /sys/class/net but lo, in ls order, with their MAC address and
# number of rx-* queues; "HVTEST: net" when there are none) at once, and again
# whenever that set or a queue count changes (polled every 0.5 s in the
# background): a hot-added or hot-removed adapter shows up on the console.
net_devices() {
    line=net
    for dev in $(ls /sys/class/net 2>/dev/null); do
        [ "$dev" = lo ] && continue
        queues=$(ls "/sys/class/net/$dev/queues" 2>/dev/null | grep -c '^rx-')  # no glob: set -f
        line="$line $dev=$(cat "/sys/class/net/$dev/address" 2>/dev/null)/$queues"
    done
    echo "$line"
}

hvtest_opt_watchnet() {
    devices=$(net_devices)
    say "$devices"
    (
        prev=$devices
        while :; do
            sleep 0.5
            cur=$(net_devices)
            if [ "$cur" != "$prev" ]; then
                say "$cur"
                prev=$cur
            fi
        done
    ) &
}

write_tick_record() {
    mark=$(dd if="/dev/$MARKDEV" bs=2048 count=1 iflag=direct 2>/dev/null | head -n 1 | tr -cd 'A-Za-z0-9-')
    printf 'HVTICK %d %s\n' "$1" "$mark" |
        dd of="/dev/$WRITER" bs=512 seek="$1" conv=notrunc,sync,fsync 2>/dev/null
}

run_cmdline_options() {
    set -f
    for word in $(cat /proc/cmdline); do
        case "$word" in
            hvtest.*=*) key=${word%%=*}; value=${word#*=} ;;
            hvtest.*) key=$word; value= ;;
            *) continue ;;
        esac
        key=$(echo "${key#hvtest.}" | tr .- __)
        if command -v "hvtest_opt_$key" >/dev/null 2>&1; then
            "hvtest_opt_$key" "$value"
        else
            say "unknown option $key"
        fi
    done
    set +f
}

# --- boot ------------------------------------------------------------------

# /etc/hvtest/modules: "<name> <path below /lib/modules>" per line, already in
# dependency order (written by guest.py from the kernel's modules.dep).
load_modules() {
    while read -r name path; do
        [ -n "$name" ] || continue
        insmod "/lib/modules/$path" || say "module $name failed"
    done </etc/hvtest/modules
}

# Block devices show up asynchronously after the drivers load: wait until
# /sys/block has not changed for 0.5 s (at most about 5 s).
block_devices() {
    ls /sys/block 2>/dev/null | grep -v -E '^(loop|ram|zram)' | tr '\n' ' '
}

settle_disks() {
    prev=$(block_devices)
    stable=0
    i=0
    while [ "$stable" -lt 5 ] && [ "$i" -lt 50 ]; do
        sleep 0.1
        cur=$(block_devices)
        if [ "$cur" = "$prev" ]; then
            stable=$((stable + 1))
        else
            stable=0
            prev=$cur
        fi
        i=$((i + 1))
    done
}

load_modules
say booted
say "mem $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
settle_disks
disks=$(block_devices)
say "disks ${disks% }"
run_cmdline_options

# The power button's input device appears asynchronously after its module
# loads, and acpid opens /dev/input/event* once, when it starts: wait for the
# button's event node first, or a loaded machine may start acpid too early
# and never see the button (ACPI shutdown then does nothing).
power_button_event() {
    grep -A6 'Name="Power Button"' /proc/bus/input/devices 2>/dev/null |
        sed -n 's/^H: Handlers=.*\(event[0-9][0-9]*\).*/\1/p' | head -n 1
}

wait_for_power_button() {
    i=0
    while [ "$i" -lt 100 ]; do
        event=$(power_button_event)
        if [ -n "$event" ] && [ -e "/dev/input/$event" ]; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    say "no power button input device"
    return 1
}

# "ready" once acpid holds the button's device open.
wait_for_acpid() {
    i=0
    while [ "$i" -lt 100 ]; do
        if ls -l "/proc/$1/fd" 2>/dev/null | grep -q "/dev/input/$event"; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    say "acpid did not open /dev/input/$event"
}

# Foreground mode (-d), backgrounded by this shell: the daemonizing form did
# not react to the power button.
event=""
wait_for_power_button
acpid -d -c /etc/acpi &
acpid_pid=$!
[ -n "$event" ] && wait_for_acpid "$acpid_pid"
say ready

n=1
while :; do
    read -r uptime _ </proc/uptime
    if [ -n "$WRITER" ]; then
        write_tick_record "$n"
        say "tick $n uptime $uptime mark $mark"
    else
        say "tick $n uptime $uptime"
    fi
    n=$((n + 1))
    sleep "$TICK"
done
