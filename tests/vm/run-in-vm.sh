#!/usr/bin/env bash
# Boot a Debian kernel under qemu (TCG) with a busybox initramfs, run one static binary in it as
# root (PID 1's child), and bring its output and exit code back.
#
# Usage: tests/vm/run-in-vm.sh --kernel SUITE [--arch amd64|arm64] [--cache DIR] [--timeout SECS]
#            [-v] [--add HOST_PATH:GUEST_PATH]... [--append 'KERNEL ARGS'] [--mem 1G] [--smp 2]
#            -- /path/to/static-binary [args...]
#   SUITE     bullseye (5.10) | bookworm (6.1) | trixie (6.12), as fetched by fetch.sh;
#             trixie-x32 (amd64: trixie's generic 6.12 kernel, with x32 built in; x32 calls
#             work only with --append syscall.x32=y); or a path to a vmlinuz file.
#   --arch    the guest's architecture (default amd64): arm64 boots Debian's arm64 kernels under
#             qemu-system-aarch64 (TCG, virt machine), from fetch.sh --arch arm64's cache.
#   --cache   defaults to ${SHMGET_TRACE_VM_CACHE:-$HOME/.cache/shmget-trace-vm}; fetch.sh is
#             run on it first if what is needed is missing.
#   --add     extra file in the initramfs (e.g. a second static binary as a workload); repeatable.
#   -v        print the whole serial console (kernel messages included) and qemu's stderr.
# Exit code: the guest program's; 124 on timeout; 125 when the guest died without reporting
# (kernel panic, init failure, qemu failure). A one-line summary with timings goes to stderr.
#
# Guest: proc, sysfs, devtmpfs, tracefs (/sys/kernel/tracing), securityfs (if any) and cgroup2
# (/sys/fs/cgroup) are mounted; debugfs is not. The program's stdout and stderr both go to the
# serial console, so they arrive merged, in order.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${SHMGET_TRACE_VM_CACHE:-$HOME/.cache/shmget-trace-vm}
KERNEL='' ARCH=amd64 TIMEOUT=120 VERBOSE=0 APPEND='' MEM=1G SMP=2
ADDS=()

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit 2; }
die() { printf 'run-in-vm: error: %s\n' "$*" >&2; exit 125; }

while (($#)); do
    case $1 in
        --kernel) KERNEL=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --arch) ARCH=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --add) ADDS+=("${2:?}"); shift 2 ;;
        --append) APPEND=${2?}; shift 2 ;;
        --mem) MEM=${2:?}; shift 2 ;;
        --smp) SMP=${2:?}; shift 2 ;;
        -v | --verbose) VERBOSE=1; shift ;;
        -h | --help) usage ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
(($#)) || usage
[[ -n $KERNEL ]] || usage
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds"
PROG=$1; shift
[[ -f $PROG && -x $PROG ]] || die "not an executable file: $PROG"
# A dynamic binary would die in the guest with a confusing "not found": say it here.
if ldd "$PROG" 2>/dev/null | grep -q '=>'; then
    echo "run-in-vm: warning: $PROG looks dynamically linked; the guest has no shared libraries" >&2
fi

[[ $ARCH == amd64 || $ARCH == arm64 ]] || die "--arch amd64 or arm64"
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
# This architecture's kernels, qemu and busybox (fetch.sh's layout).
BASE=$CACHE
[[ $ARCH == amd64 ]] || BASE=$CACHE/$ARCH

# --- Kernel, qemu, busybox from the cache (fetched on first use) ---
if [[ -f $KERNEL ]]; then
    VMLINUZ=$(cd "$(dirname "$KERNEL")" && pwd)/$(basename "$KERNEL"); KVER=$(basename "$KERNEL")
else
    [[ $KERNEL =~ ^[a-z][a-z0-9-]*$ ]] || die "bad --kernel: $KERNEL"
    if [[ ! -f $BASE/kernels/$KERNEL/kernel.env || ! -f $BASE/qemu/.done || ! -f $BASE/busybox/.done ]]; then
        echo "run-in-vm: cache incomplete, running fetch.sh --arch $ARCH $CACHE" >&2
        "$HERE/fetch.sh" --arch "$ARCH" "$CACHE" >&2 || die "fetch.sh failed"
    fi
    [[ -f $BASE/kernels/$KERNEL/kernel.env ]] || die "no kernel for suite '$KERNEL' in $BASE/kernels"
    VMLINUZ=$(. "$BASE/kernels/$KERNEL/kernel.env" && echo "$VMLINUZ")
    KVER=$(. "$BASE/kernels/$KERNEL/kernel.env" && echo "$KVER")
fi
[[ -f $VMLINUZ ]] || die "kernel image missing: $VMLINUZ"
QDIR=$BASE/qemu
QEMU=$QDIR/usr/bin/qemu-system-x86_64
# The machine: x86_64 boots through seabios; arm64 boots the Image directly on the virt machine.
# pauth-impdef: qemu's own pointer-authentication algorithm, about twice as fast under TCG as the
# architected one; -nic none also spares qemu the virtio NIC's option ROM, which it lacks here.
MACHINE=(-cpu max -L "$QDIR/usr/share/qemu" -L "$QDIR/usr/share/seabios" -L "$QDIR/usr/lib/ipxe/qemu")
CONSOLE=ttyS0
if [[ $ARCH == arm64 ]]; then
    QEMU=$QDIR/usr/bin/qemu-system-aarch64
    MACHINE=(-M virt -cpu max,pauth-impdef=on)
    CONSOLE=ttyAMA0
fi
BUSYBOX=$BASE/busybox/bin/busybox
[[ -x $QEMU && -f $BUSYBOX ]] || die "qemu or busybox missing in $BASE (run tests/vm/fetch.sh --arch $ARCH $CACHE)"
QLIBS=$QDIR/usr/lib/x86_64-linux-gnu:$QDIR/lib/x86_64-linux-gnu:$QDIR/usr/lib/x86_64-linux-gnu/ceph

# --- Temp dir and cleanup: nothing may outlive this script ---
TMP=$(mktemp -d "${TMPDIR:-/tmp}/run-in-vm.XXXXXX")
QPID=''
cleanup() {
    if [[ -n $QPID ]] && kill -0 "$QPID" 2>/dev/null; then
        # timeout(1) runs in its own process group: end it and qemu together.
        kill -TERM -- "-$QPID" 2>/dev/null || kill -TERM "$QPID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$QPID" 2>/dev/null || kill -KILL "$QPID" 2>/dev/null || true
        wait "$QPID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- The guest's /init (constant text; the command line lives in /vm/cmd) ---
INIT='#!/bin/sh
# PID 1 of the test VM (busybox sh). Mount what the tests need, run /vm/cmd, report, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing || echo "@@VM-NOTE@@ tracefs not mounted"
# securityfs: for /sys/kernel/security/lockdown (absent on kernels without it: not an error).
[ -d /sys/kernel/security ] && mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "@@VM-NOTE@@ cgroup2 not mounted"
read up _ </proc/uptime
echo  # the BIOS leaves the cursor mid-line: start the marker on a fresh line
echo "@@VM-BEGIN@@ $up"
cd /
. /vm/cmd
"$@"
rc=$?
read up _ </proc/uptime
echo "@@VM-EXIT@@ $rc $up"
sync
poweroff -f
# poweroff failed: exiting PID 1 panics, panic=-1 reboots, -no-reboot ends qemu.
exit $rc
'

squote() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
GUEST_PROG=/vm/$(basename "$PROG")
CMD="set --"
for a in "$GUEST_PROG" "$@"; do CMD+=" $(squote "$a")"; done
CMD+=$'\n'

# --- Initramfs, cached by content (busybox, init, command, every added file and its mode) ---
declare -a FILES=("$PROG:$GUEST_PROG")
for a in ${ADDS[@]+"${ADDS[@]}"}; do
    [[ $a == *:/* ]] || die "--add wants HOST_PATH:/GUEST_PATH, got: $a"
    host=${a%%:/*}; [[ -f $host ]] || die "--add: no such file: $host"
    FILES+=("$a")
done
key=$({
    echo "initramfs-v1"
    sha256sum <"$BUSYBOX"
    echo "$ARCH"
    printf '%s' "$INIT" | sha256sum
    printf '%s' "$CMD" | sha256sum
    for f in "${FILES[@]}"; do
        host=${f%%:/*}; guest=/${f#*:/}
        printf '%s %s ' "$guest" "$(stat -c %a "$host")"; sha256sum <"$host"
    done
} | sha256sum | cut -c1-32)
IDIR=$CACHE/initramfs
INITRD=$IDIR/$key.cpio.gz
mkdir -p "$IDIR"
if [[ ! -f $INITRD ]]; then
    R=$TMP/root
    mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,vm,etc,run}
    cp "$BUSYBOX" "$R/bin/busybox"; chmod 755 "$R/bin/busybox"
    # Applet links, so the init and tests can call sh, mount, cat, ... directly (the host's
    # busybox lists them: the arm64 one does not run here, and has the same applets).
    HOST_BUSYBOX=$CACHE/busybox/bin/busybox
    [[ -x $HOST_BUSYBOX ]] || die "the amd64 busybox is missing (run tests/vm/fetch.sh $CACHE)"
    while read -r app; do
        [[ $app == bin/busybox || -e $R/$app ]] || ln -s /bin/busybox "$R/$app"
    done < <("$HOST_BUSYBOX" --list-full)
    # The kernel opens /dev/console for init before devtmpfs is mounted (needs root to create).
    mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
    printf '%s' "$INIT" >"$R/init"; chmod 755 "$R/init"
    printf '%s' "$CMD" >"$R/vm/cmd"
    for f in "${FILES[@]}"; do
        host=${f%%:/*}; guest=/${f#*:/}
        mkdir -p "$R$(dirname "$guest")"
        rm -f "$R$guest"
        cp "$host" "$R$guest"; chmod "$(stat -c %a "$host")" "$R$guest"
    done
    (cd "$R" && find . -mindepth 1 | LC_ALL=C sort | "$HOST_BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) |
        gzip -1 >"$TMP/initrd.gz"
    mv "$TMP/initrd.gz" "$INITRD"   # atomic: a concurrent run sees either nothing or all
    rm -rf "$R"
    # Old images are only a cache: drop those unused for a week.
    find "$IDIR" -name '*.cpio.gz' -mtime +7 -delete 2>/dev/null || true
fi
touch "$INITRD"

# --- Boot ---
start=$(date +%s.%N)
rc=0
timeout --kill-after=10 "$TIMEOUT" env LD_LIBRARY_PATH="$QLIBS" "$QEMU" \
    -accel tcg "${MACHINE[@]}" -smp "$SMP" -m "$MEM" -nographic -nic none -no-reboot \
    -kernel "$VMLINUZ" -initrd "$INITRD" \
    -append "console=$CONSOLE panic=-1 quiet${APPEND:+ $APPEND}" \
    </dev/null >"$TMP/console.log" 2>"$TMP/qemu.err" &
QPID=$!
wait "$QPID" || rc=$?
QPID=''
wall=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')

tr -d '\r' <"$TMP/console.log" >"$TMP/console.txt"
# Markers are matched anywhere in a line: output without a final newline precedes the exit one.
exitline=$(grep -aoE '@@VM-EXIT@@ [0-9]+ [0-9.]+$' "$TMP/console.txt" | tail -n1 || true)
beginline=$(grep -aoE '@@VM-BEGIN@@ [0-9.]+$' "$TMP/console.txt" | head -n1 || true)

if ((VERBOSE)); then
    cat "$TMP/console.txt"; echo
    [[ -s $TMP/qemu.err ]] && sed 's/^/qemu: /' "$TMP/qemu.err" >&2
elif [[ -n $exitline ]]; then
    # The program's lines: between the markers, minus kernel messages ("[    1.234] ...").
    awk 'on && /@@VM-EXIT@@ [0-9]+ [0-9.]+$/ { sub(/@@VM-EXIT@@ .*/, ""); if ($0 != "") print; exit }
         on && !/^\[ *[0-9]+\.[0-9]+\] / && !/^@@VM-NOTE@@ / { print }
         /@@VM-BEGIN@@ [0-9.]+$/ { on = 1 }' "$TMP/console.txt"
fi

if [[ -z $exitline ]]; then
    if ((!VERBOSE)) && [[ -n $beginline ]]; then
        # What the program printed before it was cut short (a timeout): its results so far.
        awk 'on && !/^\[ *[0-9]+\.[0-9]+\] / && !/^@@VM-NOTE@@ / { print }
             /@@VM-BEGIN@@ [0-9.]+$/ { on = 1 }' "$TMP/console.txt"
    fi
    if ((!VERBOSE)); then
        echo "run-in-vm: --- last console lines ---" >&2
        tail -n 40 "$TMP/console.txt" >&2
        [[ -s $TMP/qemu.err ]] && sed 's/^/qemu: /' "$TMP/qemu.err" >&2
    fi
    if ((rc == 124 || rc == 137)); then
        echo "run-in-vm: $KERNEL ($KVER): TIMEOUT after ${TIMEOUT}s, no exit marker" >&2
        exit 124
    fi
    if [[ -z $beginline ]]; then why="guest never reached the test (kernel panic or init failure?)"
    else why="guest stopped before the program finished (panic?)"; fi
    echo "run-in-vm: $KERNEL ($KVER): no exit marker, qemu exit $rc: $why" >&2
    exit 125
fi

read -r _ code t_end <<<"$exitline"
read -r _ t_boot <<<"$beginline"
echo "run-in-vm: $KERNEL ($KVER): exit $code; boot to init ${t_boot:-?}s, done at ${t_end:-?}s (guest clock); wall ${wall}s" >&2
exit "$code"
