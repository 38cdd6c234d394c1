#!/usr/bin/env bash
# The kernel matrix: every attach mode of shmget-trace on real Debian kernels, in VMs.
# Builds (cargo build --release), fetches (fetch.sh), then boots ONE VM per kernel that runs
# shm-vm-check for all modes (kprobe fentry tracepoint auto), and prints kernel x mode with
# PASS/FAIL, event counts and the mode auto chose.
#
# Usage: tests/vm/matrix.sh [--cache DIR] [--kernels 'bullseye bookworm trixie'] [--timeout SECS]
#            [--bench N] [--bench-kernel SUITE] [--no-build] [--log-dir DIR] [-v]
#   --cache     VM cache (kernels, qemu, busybox, initramfs images), as for run-in-vm.sh.
#   --timeout   per VM (default 300 s; a VM normally needs 20-60 s under TCG).
#   --bench N   also time N failing shmget calls per mode, untraced vs traced (3 rounds), in the
#               --bench-kernel guest (default bookworm); 0 turns it off (default 200000).
#   --log-dir   keep each VM's full output there (default: a temp dir, removed at exit).
#   -v          print each VM's output as it comes.
# Exit code: 0 when every kernel x mode cell passed; 1 on any failure; 2 on bad usage.
# The guest runs only static binaries (busybox-static, shmget-trace, shm-vm-check): no shared
# libraries in the initramfs. Each VM runs under timeout(1) (run-in-vm.sh); nothing is left
# running when this script ends, also when it is interrupted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${SHMGET_TRACE_VM_CACHE:-$HOME/.cache/shmget-trace-vm}
KERNELS='bullseye bookworm trixie'
MODES='kprobe fentry tracepoint auto'
TIMEOUT=300 BENCH=200000 BENCH_KERNEL=bookworm BUILD=1 LOG_DIR='' VERBOSE=0

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit 2; }
die() { printf 'matrix: error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
    case $1 in
        --cache) CACHE=${2:?}; shift 2 ;;
        --kernels) KERNELS=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --bench) BENCH=${2:?}; shift 2 ;;
        --bench-kernel) BENCH_KERNEL=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --log-dir) LOG_DIR=${2:?}; shift 2 ;;
        -v | --verbose) VERBOSE=1; shift ;;
        -h | --help) usage ;;
        *) usage ;;
    esac
done
[[ $TIMEOUT =~ ^[0-9]+$ && $BENCH =~ ^[0-9]+$ ]] || usage

t0=$(date +%s)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shmget-matrix.XXXXXX")
CHILD=''
cleanup() {
    # run-in-vm.sh cleans up its qemu on TERM; wait for it to do so.
    if [[ -n $CHILD ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
if [[ -z $LOG_DIR ]]; then LOG_DIR=$TMP/logs; fi
mkdir -p "$LOG_DIR"

# --- Build: fully static binaries (see .cargo/config.toml) ---
REL=$ROOT/target/x86_64-unknown-linux-gnu/release
if ((BUILD)); then
    echo "matrix: cargo build --release" >&2
    (cd "$ROOT" && cargo build --release --bins) >&2 || die "cargo build failed"
fi
for b in shmget-trace shm-vm-check; do
    [[ -x $REL/$b ]] || die "missing $REL/$b (build first)"
    # The initramfs has no shared libraries: refuse a dynamic binary here.
    if ! LC_ALL=C ldd "$REL/$b" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
        die "$REL/$b is dynamically linked; the guest has no shared libraries"
    fi
done

# --- Fetch kernels, qemu, busybox (cached) ---
"$HERE/fetch.sh" "$CACHE" >&2 || die "fetch.sh failed"

# --- One VM per kernel, all modes in it ---
declare -A CELL RC KVER WALL
BENCH_LINES=() SAME_LINES=() FAIL_DETAILS=()
for k in $KERNELS; do
    args=(--tracer /bin/shmget-trace)
    if ((BENCH > 0)) && [[ $k == "$BENCH_KERNEL" ]]; then args+=(--bench "$BENCH"); fi
    log=$LOG_DIR/$k.log
    echo "matrix: $k: booting (modes: $MODES${args[2]:+; bench $BENCH calls})" >&2
    s=$(date +%s.%N)
    # In the background so that a TERM to this script reaches run-in-vm.sh's own cleanup.
    "$HERE/run-in-vm.sh" --kernel "$k" --cache "$CACHE" --timeout "$TIMEOUT" \
        --add "$REL/shmget-trace:/bin/shmget-trace" \
        -- "$REL/shm-vm-check" "${args[@]}" $MODES >"$log" 2>&1 &
    CHILD=$!
    if ((VERBOSE)); then
        tail -n +1 -f --pid="$CHILD" "$log" >&2 &
        TAILPID=$!
    fi
    rc=0; wait "$CHILD" || rc=$?
    CHILD=''
    if ((VERBOSE)); then wait "$TAILPID" 2>/dev/null || true; fi
    WALL[$k]=$(echo "$s $(date +%s.%N)" | awk '{ printf "%.0f", $2 - $1 }')
    RC[$k]=$rc
    KVER[$k]=$(sed -n "s/^run-in-vm: $k (\([^)]*\)).*/\1/p" "$log" | tail -n1)
    for m in $MODES; do
        line=$(grep -a "^@@MODE $m " "$log" | tail -n1 || true)
        if [[ $line =~ ^@@MODE\ $m\ PASS\ ([0-9]+)\ events\ chose=([a-z?]+) ]]; then
            if [[ $m == auto ]]; then CELL[$k,$m]="PASS ${BASH_REMATCH[1]} ->${BASH_REMATCH[2]}"
            else CELL[$k,$m]="PASS ${BASH_REMATCH[1]}"; fi
        elif [[ $line == "@@MODE $m FAIL"* ]]; then
            CELL[$k,$m]=FAIL
            FAIL_DETAILS+=("$k $m: ${line#"@@MODE $m FAIL "}")
        else
            CELL[$k,$m]="NONE"
        fi
    done
    while IFS= read -r l; do SAME_LINES+=("$k: $l"); done < <(grep -a '^@@SAME ' "$log" || true)
    while IFS= read -r l; do BENCH_LINES+=("$k: ${l#@@BENCH }"); done < <(grep -a '^@@BENCH ' "$log" || true)
    if ((rc != 0)) && ! grep -qa '^@@MODE ' "$log"; then
        FAIL_DETAILS+=("$k: VM exit $rc without results: $(grep -a '^run-in-vm:' "$log" | tail -n1)")
    fi
    echo "matrix: $k: exit $rc, ${WALL[$k]}s" >&2
done

# --- The matrix ---
echo
printf '%-10s %-28s' kernel version
for m in $MODES; do printf ' %-14s' "$m"; done; echo
fail=0
for k in $KERNELS; do
    printf '%-10s %-28s' "$k" "${KVER[$k]:-?}"
    for m in $MODES; do
        c=${CELL[$k,$m]:-NONE}
        [[ $c == PASS* ]] || fail=1
        printf ' %-14s' "$c"
    done
    echo
    ((RC[$k] == 0)) || fail=1
done
echo "(PASS n: n events checked field for field; auto ->m: the mode auto chose)"
for l in ${SAME_LINES[@]+"${SAME_LINES[@]}"}; do
    echo "same events across modes, $l"
    [[ $l == *"@@SAME PASS"* ]] || fail=1
done
if ((${#BENCH_LINES[@]})); then
    echo "per-call cost (TCG, indicative only):"
    printf '  %s\n' "${BENCH_LINES[@]}"
    for l in "${BENCH_LINES[@]}"; do [[ $l != *FAIL* ]] || fail=1; done
fi
if ((${#FAIL_DETAILS[@]})); then
    echo "failures (full output in $LOG_DIR, kept with --log-dir):"
    printf '  %s\n' "${FAIL_DETAILS[@]}"
    for k in $KERNELS; do
        # A failed mode's details are the indented lines after its @@MODE line.
        awk -v k="$k" '/^@@MODE [a-z]+ FAIL/ { on = 1; m = $2; next }
             on && /^    / { if (n++ < 60) print "  " k " " m "|" $0; next } { on = 0 }' \
            "$LOG_DIR/$k.log" 2>/dev/null || true
        if ! grep -qa '^@@MODE ' "$LOG_DIR/$k.log" 2>/dev/null; then
            tail -n 15 "$LOG_DIR/$k.log" 2>/dev/null | sed "s/^/  $k| /"
        fi
    done
fi
# The plain tally that CI reads: one per kernel and mode.
passed=0 failed=0
for k in $KERNELS; do
    for m in $MODES; do
        if [[ ${CELL[$k,$m]} == PASS* ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    done
done
echo "matrix: $passed passed, $failed failed"
echo "matrix: $(( $(date +%s) - t0 ))s in all ($(for k in $KERNELS; do printf '%s %ss ' "$k" "${WALL[$k]}"; done | sed 's/ $//')); $( ((fail)) && echo FAILED || echo all passed)"
exit "$fail"
