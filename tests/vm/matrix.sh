#!/usr/bin/env bash
# The kernel matrix: the project's own integration tests on real Debian kernels, in VMs, once per
# attach mode. Builds the test binaries and the tracer (`cargo test --no-run`, the test profile,
# so nothing is built twice after `cargo test`), fetches kernels, qemu and busybox (fetch.sh),
# then boots ONE VM per kernel in which guest-tests.sh runs every test binary for each mode with
#   SHMGET_TRACE_ATTACH=<mode> SHMGET_TRACE_BIN=/bin/shmget-trace SHMGET_TRACE_REQUIRE_BPF=1
# and prints kernel x mode: PASS n (tests passed, summed over the binaries) or FAIL, and for
# auto the mode it chose (one `shmget-trace -v --attach auto` run); then the failing tests and
# their output, then `matrix: N passed, M failed` (cells).
#
# Usage: tests/vm/matrix.sh [--arch amd64|arm64] [--cache DIR]
#            [--kernels 'bullseye bookworm trixie trixie-x32']
#            [--modes 'kprobe fentry tracepoint auto'] [--timeout SECS] [--test-timeout SECS]
#            [--threads N] [--jobs N] [--log-dir DIR] [-v]
#   --arch          amd64 (default): the x86_64 build on Debian's amd64 kernels. arm64: the
#                   aarch64 build (scripts/build-aarch64, cross toolchain installed where
#                   missing) on Debian's arm64 kernels under qemu-system-aarch64, with the
#                   static armhf AArch32 workload (tests/support/arm32-workload.c) at
#                   /vm/arm32-workload in the guest.
#   --cache         VM cache (kernels, qemu, busybox, initramfs images), as for run-in-vm.sh.
#   --kernels       default: bullseye bookworm trixie (cloud kernels 5.10, 6.1, 6.12), and on
#                   amd64 also trixie-x32: trixie's generic 6.12 kernel booted with
#                   syscall.x32=y (x32 system calls enabled), where only the modes
#                   'kprobe tracepoint' run (KERNEL_MODES below; its other cells print '-').
#   --modes         the modes to run (default all four); a kernel with a list of its own
#                   (KERNEL_MODES) runs only the modes that are in both lists.
#   --timeout       per VM (default 1500 s).
#   --test-timeout  per test binary and mode, in the guest (default 300 s).
#   --threads       the test binaries' --test-threads (default 1: a test that attaches or
#                   detaches a probe while another one runs shmget on the other vCPU has
#                   panicked 6.12 under TCG, qemu's emulation of code patched as it runs; and
#                   Debian's 6.1 refuses a second fexit program on a function, EBUSY).
#   --jobs          VMs at once (default: one per kernel, 4 on amd64; the x32 VM runs half the
#                   modes and finishes no later than the others).
#   --log-dir       keep each VM's full output there (default: a temp dir, removed at exit).
#   -v              print each VM's output as it comes.
# Exit code: 0 when every kernel x mode cell passed; 1 on any failure; 2 on bad usage.
# The test binaries and the tracer must be static (busybox-static, shmget-trace, the test
# binaries, all copied without debug info); the only dynamic program in the guest is strace, at
# /usr/bin/strace (on PATH), bundled on purpose with exactly the shared libraries and the dynamic
# loader it needs, at their own absolute paths: on amd64 the host's /usr/bin/strace (apt package
# strace; missing: the matrix fails and says so), on arm64 Debian bookworm's strace:arm64 and
# libc6:arm64, which fetch.sh downloads and unpacks into the cache. Each VM runs under
# timeout(1) (run-in-vm.sh); nothing is left running when this script ends, also when it is
# interrupted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${SHMGET_TRACE_VM_CACHE:-$HOME/.cache/shmget-trace-vm}
KERNELS=''
MODES='kprobe fentry tracepoint auto'
TIMEOUT=1500 TEST_TIMEOUT=300 THREADS=1 JOBS='' LOG_DIR='' VERBOSE=0 ARCH=amd64
# Kernels that run only some of the modes (the others print '-' and count as skipped, not as
# failures): the x32 kernel is there for the x32 callers, which kprobe and tracepoint tell apart;
# its fentry and auto cells would repeat trixie's (the same 6.12) at ~7 min of CI time.
declare -A KERNEL_MODES=([trixie-x32]='kprobe tracepoint')
# Extra kernel command line per kernel (run-in-vm.sh --append).
declare -A KERNEL_APPEND=([trixie-x32]='syscall.x32=y')
# Cells (kernel:mode) whose mode the kernel cannot do, as known: there the tracer must refuse
# the mode in one line (the cell says n/a); anywhere else a refusal fails the cell. arm64 5.10
# and 6.1 lack CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS: fexit attach fails with ENOTSUPP.
declare -A NOT_AVAILABLE=([arm64]='bullseye:fentry bookworm:fentry')

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit 2; }
die() { printf 'matrix: error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
    case $1 in
        --arch) ARCH=${2:?}; shift 2 ;;
        --cache) CACHE=${2:?}; shift 2 ;;
        --kernels) KERNELS=${2:?}; shift 2 ;;
        --modes) MODES=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --test-timeout) TEST_TIMEOUT=${2:?}; shift 2 ;;
        --threads) THREADS=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        --log-dir) LOG_DIR=${2:?}; shift 2 ;;
        -v | --verbose) VERBOSE=1; shift ;;
        -h | --help) usage ;;
        *) usage ;;
    esac
done
[[ $TIMEOUT =~ ^[0-9]+$ && $TEST_TIMEOUT =~ ^[0-9]+$ && $THREADS =~ ^[1-9][0-9]*$ && $JOBS =~ ^([1-9][0-9]*)?$ ]] ||
    usage
for m in $MODES; do [[ $m =~ ^(kprobe|fentry|tracepoint|auto)$ ]] || usage; done
[[ $ARCH == amd64 || $ARCH == arm64 ]] || usage
if [[ -z $KERNELS ]]; then
    KERNELS='bullseye bookworm trixie'
    # x32 exists only on x86_64 (fetch.sh fetches trixie-x32 for amd64 only).
    [[ $ARCH == amd64 ]] && KERNELS+=' trixie-x32'
fi
[[ -n $JOBS ]] || JOBS=$(wc -w <<<"$KERNELS")
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || usage
# The modes a kernel runs: those of --modes that are also in its own list, if it has one.
kernel_modes() {
    local m out=''
    for m in $MODES; do
        [[ -z ${KERNEL_MODES[$1]:-} || " ${KERNEL_MODES[$1]} " == *" $m "* ]] && out+="$m "
    done
    echo "${out% }"
}

t0=$(date +%s)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shmget-matrix.XXXXXX")
CHILDREN=()
cleanup() {
    # run-in-vm.sh cleans up its qemu on TERM; wait for each to do so.
    local c
    for c in ${CHILDREN[@]+"${CHILDREN[@]}"}; do kill -TERM "$c" 2>/dev/null || true; done
    for c in ${CHILDREN[@]+"${CHILDREN[@]}"}; do wait "$c" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
if [[ -z $LOG_DIR ]]; then LOG_DIR=$TMP/logs; fi
mkdir -p "$LOG_DIR"

# --- Build: the test profile's executables and the tracer, fully static (.cargo/config.toml) ---
CARGO=(cargo)
if [[ $ARCH == arm64 ]]; then
    CARGO=(scripts/build-aarch64)
    "$ROOT/scripts/cross-toolchain.sh" >&2 || die "installing the cross toolchain failed"
    eval "$("$ROOT/scripts/cross-toolchain.sh" --env)"
    OBJCOPY=$SHMGET_TRACE_AARCH64_OBJCOPY
fi
echo "matrix: ${CARGO[*]} test --no-run ($ARCH)" >&2
(cd "$ROOT" && "${CARGO[@]}" test --no-run --message-format=json-render-diagnostics) >"$TMP/cargo.json" ||
    die "cargo test --no-run failed"
# One line per executable: "<kind> <target name> <profile.test> <path>".
sed -nE 's/.*"target":\{"kind":\["([^"]*)"\][^}]*"name":"([^"]*)".*"profile":\{[^}]*"test":(true|false)\}.*"executable":"([^"]*)".*/\1 \2 \3 \4/p' \
    "$TMP/cargo.json" >"$TMP/executables"
TRACER='' ADDS=()
mkdir -p "$TMP/bin/tests"
# Copies without debug info keep the initramfs small (debug test binaries: 13-25 MB -> 2-6 MB).
strip_copy() {
    local src=$1 dst=$2
    # The initramfs has no shared libraries: refuse a dynamic binary (readelf reads any ELF).
    if LC_ALL=C readelf -lW "$src" 2>/dev/null | grep -q 'Requesting program interpreter'; then
        die "$src is dynamically linked; the guest has no shared libraries (see .cargo/config.toml)"
    fi
    "${OBJCOPY:-objcopy}" --strip-debug "$src" "$dst" 2>/dev/null || cp "$src" "$dst"
    chmod 755 "$dst"
}
while read -r kind name test exe; do
    if [[ $test == true ]]; then
        # Guest names: the integration tests by their target name, unit tests as lib / bin.NAME.
        case $kind in
            test) gname=$name ;;
            lib) gname=lib ;;
            *) gname=$kind.$name ;;
        esac
        strip_copy "$exe" "$TMP/bin/tests/$gname"
        ADDS+=(--add "$TMP/bin/tests/$gname:/vm/tests/$gname")
    elif [[ $kind == bin && $name == shmget-trace ]]; then
        TRACER=$exe
    fi
done <"$TMP/executables"
[[ -n $TRACER ]] || die "cargo built no shmget-trace binary (see $TMP/cargo.json)"
((${#ADDS[@]})) || die "cargo built no test executables"
strip_copy "$TRACER" "$TMP/bin/shmget-trace"
ADDS+=(--add "$TMP/bin/shmget-trace:/bin/shmget-trace")
if [[ $ARCH == arm64 ]]; then
    # The AArch32 caller of the arm64 tests: a static 32-bit ARM program.
    "$SHMGET_TRACE_ARMHF_CC" -static -O2 -Wall -Werror -s -o "$TMP/bin/arm32-workload" \
        "$ROOT/tests/support/arm32-workload.c" || die "building the armhf workload failed"
    ADDS+=(--add "$TMP/bin/arm32-workload:/vm/arm32-workload")
fi
echo "matrix: test binaries: $(cd "$TMP/bin/tests" && echo *)" >&2

# --- strace: the guest's one dynamic program, bundled explicitly (not through strip_copy) ---
# The binary at /usr/bin/strace, its shared libraries (DT_NEEDED, followed recursively) at
# /lib/TRIPLET/NAME and its dynamic loader at the path its PT_INTERP names, all taken from the
# tree ROOT (/ for the host's own strace). readelf rather than ldd: it also reads another
# architecture's binaries, which cannot run here.
bundle_strace() { # ROOT TRIPLET
    local root=${1%/} triplet=$2 bin f lib d found interp
    bin=$root/usr/bin/strace
    local -a queue=("$bin") libs=()
    local -A seen=()
    interp=$(LC_ALL=C readelf -lW "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
    [[ -n $interp && -e $root$interp ]] || die "strace's dynamic loader ${interp:-?} missing under ${root:-/}"
    ADDS+=(--add "$(readlink -f "$bin"):/usr/bin/strace" --add "$(readlink -f "$root$interp"):$interp")
    while ((${#queue[@]})); do
        f=${queue[0]}; queue=("${queue[@]:1}")
        for lib in $(LC_ALL=C readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
            [[ -n ${seen[$lib]:-} ]] && continue
            seen[$lib]=1
            # The loader itself may be NEEDED (ld-linux-*.so.*): it is already there.
            [[ $lib == "${interp##*/}" ]] && continue
            found=''
            for d in lib/$triplet usr/lib/$triplet lib usr/lib; do
                [[ -e $root/$d/$lib ]] && { found=$root/$d/$lib; break; }
            done
            [[ -n $found ]] || die "strace needs $lib, which is not under ${root:-/}/{,usr/}lib/$triplet"
            ADDS+=(--add "$(readlink -f "$found"):/lib/$triplet/$lib")
            libs+=("$lib")
            queue+=("$found")
        done
    done
    echo "matrix: strace for the guest: $root/usr/bin/strace + ${libs[*]} + $interp" >&2
}
if [[ $ARCH == amd64 ]]; then
    [[ -x /usr/bin/strace ]] ||
        die "strace is not installed on this host (apt-get install strace): the x86_64 guests run /usr/bin/strace"
    bundle_strace / x86_64-linux-gnu
fi

# --- Fetch kernels, qemu, busybox (cached) ---
"$HERE/fetch.sh" "$CACHE" >&2 || die "fetch.sh failed"
if [[ $ARCH != amd64 ]]; then
    "$HERE/fetch.sh" --arch "$ARCH" "$CACHE" >&2 || die "fetch.sh --arch $ARCH failed"
    # Debian bookworm's strace:arm64 and its libraries, unpacked by fetch.sh.
    [[ -f $CACHE/$ARCH/strace/.done ]] || die "fetch.sh left no strace for $ARCH in $CACHE/$ARCH/strace"
    bundle_strace "$CACHE/$ARCH/strace" aarch64-linux-gnu
fi

# --- One VM per kernel, all modes in it; up to --jobs VMs at once ---
declare -A CELL RC KVER WALL AUTO PIDOF START PANICKED
FAILS=()   # "kernel mode binary" of each failed run
FLAKY=()   # "kernel mode" of each cell where a test failed once and passed when run again
start_vm() {
    local k=$1 km
    km=$(kernel_modes "$k")
    if [[ -z $km ]]; then
        echo "matrix: $k: none of the modes runs there; not booted" >&2
        : >"$LOG_DIR/$k.log"   # an empty log: the reports below read every kernel's
        return
    fi
    echo "matrix: $k: booting (modes: $km${KERNEL_APPEND[$k]:+; kernel args: ${KERNEL_APPEND[$k]}})" >&2
    START[$k]=$(date +%s.%N)
    # In the background so that a TERM to this script reaches run-in-vm.sh's own cleanup.
    "$HERE/run-in-vm.sh" --arch "$ARCH" --kernel "$k" --cache "$CACHE" --timeout "$TIMEOUT" "${ADDS[@]}" \
        ${KERNEL_APPEND[$k]:+--append "${KERNEL_APPEND[$k]}"} \
        -- "$HERE/guest-tests.sh" --threads "$THREADS" --timeout "$TEST_TIMEOUT" $km \
        >"$LOG_DIR/$k.log" 2>&1 &
    PIDOF[$k]=$!
    CHILDREN+=("$!")
    if ((VERBOSE)); then
        tail -n +1 -f --pid="$!" "$LOG_DIR/$k.log" | sed -u "s/^/$k| /" >&2 &
    fi
}
collect_vm() {
    local k=$1 log=$LOG_DIR/$1.log rc=0 m n ok seen b brc p f flaky km
    km=$(kernel_modes "$k")
    for m in $MODES; do [[ " $km " == *" $m "* ]] || CELL[$k,$m]=-; done
    if [[ -z $km ]]; then RC[$k]=0 WALL[$k]=0; return; fi
    wait "${PIDOF[$k]}" || rc=$?
    # A guest that died (exit 125: no exit marker) is booted once more, all its modes again:
    # 6.12 under TCG has panicked in the syscall exit path while a probe was being patched in
    # on the other vCPU (qemu's emulation of code modified as it runs). Shown, not hidden.
    if ((rc == 125)) && ! grep -aq '^@@DONE' "$log" && [[ -z ${PANICKED[$k]:-} ]]; then
        PANICKED[$k]=$(grep -a -m1 -E 'Kernel panic|BUG:|Oops' "$log" | sed 's/^\[[ 0-9.]*\] //' || true)
        PANICKED[$k]=${PANICKED[$k]:-the guest stopped before the program finished}
        mv "$log" "$LOG_DIR/$k.died.log"
        echo "matrix: $k: the guest died (${PANICKED[$k]}); booting it once more" >&2
        start_vm "$k"
        rc=0
        wait "${PIDOF[$k]}" || rc=$?
    fi
    WALL[$k]=$(echo "${START[$k]} $(date +%s.%N)" | awk '{ printf "%.0f", $2 - $1 }')
    # The VMs are collected in start order: one that ended before the one collected ahead of it
    # would show that one's time. run-in-vm.sh's own summary has the VM's real wall time.
    p=$(sed -n "s/^run-in-vm: $k (.*; wall \([0-9.]*\)s$/\1/p" "$log" | tail -n1)
    [[ -z $p ]] || WALL[$k]=$(awk -v w="$p" 'BEGIN { printf "%.0f", w }')
    RC[$k]=$rc
    KVER[$k]=$(sed -n "s/^run-in-vm: $k (\([^)]*\)).*/\1/p" "$log" | tail -n1)
    AUTO[$k]=$(sed -n 's/^@@AUTO \([a-z?]*\).*/\1/p' "$log" | tail -n1)
    for m in $km; do
        if grep -aq "^@@UNAVAILABLE $m " "$log"; then
            if [[ " ${NOT_AVAILABLE[$ARCH]:-} " == *" $k:$m "* ]]; then CELL[$k,$m]=n/a
            else CELL[$k,$m]="FAIL n/a"; FAILS+=("$k $m unavailable"); fi
            continue
        fi
        n=0 ok=1 seen=0
        while read -r _ _ b brc p f _; do
            seen=1
            if [[ $brc == 0 && $f == 0 && $p != -1 ]]; then n=$((n + p)); else ok=0; FAILS+=("$k $m $b"); fi
        done < <(grep -a "^@@RESULT $m " "$log" || true)
        if ((seen && ok)); then
            CELL[$k,$m]="PASS $n"
            flaky=$(grep -ac "^@@FLAKY $m " "$log" || true)
            ((flaky == 0)) || { CELL[$k,$m]+=" ${flaky}flaky"; FLAKY+=("$k $m"); }
            [[ $m != auto ]] || CELL[$k,$m]+=" ->${AUTO[$k]:-?}"
        elif ((seen)); then CELL[$k,$m]=FAIL
        else CELL[$k,$m]=NONE
        fi
    done
    echo "matrix: $k: exit $rc, ${WALL[$k]}s" >&2
}
running=()
for k in $KERNELS; do
    if ((${#running[@]} >= JOBS)); then collect_vm "${running[0]}"; running=("${running[@]:1}"); fi
    start_vm "$k"
    running+=("$k")
done
for k in ${running[@]+"${running[@]}"}; do collect_vm "$k"; done
CHILDREN=()

# --- The matrix ---
echo
[[ $ARCH == amd64 ]] || echo "matrix ($ARCH):"
printf '%-10s %-28s' kernel version
for m in $MODES; do printf ' %-14s' "$m"; done; echo
fail=0
for k in $KERNELS; do
    printf '%-10s %-28s' "$k" "${KVER[$k]:-?}"
    for m in $MODES; do
        c=${CELL[$k,$m]:-NONE}
        [[ $c == PASS* || $c == n/a || $c == - ]] || fail=1
        printf ' %-14s' "$c"
    done
    echo
    ((RC[$k] == 0)) || fail=1
done
echo "(PASS n: n tests passed, summed over the test binaries; auto ->m: the mode auto chose;"
echo " NONE: the VM reported nothing for that mode; n/a: the kernel cannot do the mode, as known,"
echo " and the tracer refused it in one line; -: not run on that kernel, by design (KERNEL_MODES))"
for k in $KERNELS; do
    grep -a '^@@UNAVAILABLE' "$LOG_DIR/$k.log" 2>/dev/null | sed "s/^@@UNAVAILABLE /  $k /" || true
done

for k in $KERNELS; do
    [[ -z ${PANICKED[$k]:-} ]] || echo "  $k: its first guest died (${PANICKED[$k]}); the cells above are of its second boot"
done

# Ignored tests, with the reasons the binaries gave (they are not failures, but say what the
# matrix did not cover).
ign=$(for k in $KERNELS; do
    awk -v k="$k" '/^@@BEGIN / { m = $2; b = $3; next }
         /^test .* \.\.\. ignored/ { sub(/^test /, ""); print "  " k " " m " " b ": " $0 }' \
        "$LOG_DIR/$k.log" 2>/dev/null
done)
if [[ -n $ign ]]; then echo "ignored:"; echo "$ign"; fi

# Tests that failed once and passed when run again: named, with the output of the failure.
if ((${#FLAKY[@]})); then
    echo
    echo "flaky (failed, then passed when run again alone; the cell passes):"
    for x in "${FLAKY[@]}"; do
        read -r k m <<<"$x"
        awk -v k="$k" -v m="$m" '
            $1 == "@@BEGIN" { on = ($2 == m); f = 0; next }
            !on { next }
            $1 == "@@FLAKY" { print "  " k " " m " " $3 ": " $4; next }
            $0 == "failures:" && !f { f = 1 }
            f && /^test result: / { f = 2 }
            f == 1 { print "  | " $0 }' "$LOG_DIR/$k.log"
    done
fi

# Failing tests: their names, then the output the test binary printed for them.
if ((${#FAILS[@]})) || ((fail)); then
    echo
    echo "failures (full output in $LOG_DIR, kept with --log-dir):"
    for x in ${FAILS[@]+"${FAILS[@]}"}; do
        read -r k m b <<<"$x"
        awk -v m="$m" -v b="$b" -v k="$k" '
            $0 == "@@BEGIN " m " " b { on = 1; next }
            on && index($0, "@@RESULT " m " " b " ") == 1 {
                split($0, r, " ")
                if (r[5] == -1) how = "exit " r[4] ", no test result"
                else how = r[6] " failed, exit " r[4]
                printf "%s %s %s: %s:%s\n", k, m, b, how, (names == "" ? " -" : names); exit }
            on && /^test .* \.\.\. FAILED$/ { t = $2; names = names " " t }' "$LOG_DIR/$k.log"
    done | sed 's/^/  /'
    for x in ${FAILS[@]+"${FAILS[@]}"}; do
        read -r k m b <<<"$x"
        echo
        echo "--- $k $m $b ---"
        # libtest's "failures:" block has each failing test's output; without one (a crash or
        # a timeout), the last lines the binary printed.
        awk -v m="$m" -v b="$b" '
            $0 == "@@BEGIN " m " " b { on = 1; next }
            !on { next }
            index($0, "@@RESULT " m " " b " ") == 1 { exit }
            { all[n++] = $0 }
            $0 == "failures:" && !f { f = 1 }
            f && /^test result: / { f = 2 }
            f == 1 { out = out $0 "\n"; lines++ }
            END {
                if (out != "") printf "%s", out
                else for (i = (n > 40 ? n - 40 : 0); i < n; i++) print all[i]
            }' "$LOG_DIR/$k.log" | head -n 300 | sed 's/^/  | /'
    done
    for k in $KERNELS; do
        [[ -n $(kernel_modes "$k") ]] || continue
        if ! grep -qa '^@@DONE' "$LOG_DIR/$k.log" 2>/dev/null; then
            echo
            echo "--- $k: the VM did not finish (exit ${RC[$k]}) ---"
            tail -n 25 "$LOG_DIR/$k.log" 2>/dev/null | sed 's/^/  | /'
        fi
    done
fi

# The plain tally that CI reads: one per kernel and mode.
passed=0 failed=0 na=0 skipped=0
for k in $KERNELS; do
    for m in $MODES; do
        case ${CELL[$k,$m]:-NONE} in
            PASS*) passed=$((passed + 1)) ;;
            n/a) na=$((na + 1)) ;;
            -) skipped=$((skipped + 1)) ;;
            *) failed=$((failed + 1)) ;;
        esac
    done
done
echo
LABEL=matrix
[[ $ARCH == amd64 ]] || LABEL="matrix ($ARCH)"
echo "$LABEL: $passed passed, $failed failed$( ((na)) && echo ", $na not available (as known)")$( ((skipped)) && echo ", $skipped not run (by design)")"
echo "$LABEL: $(($(date +%s) - t0))s in all ($(for k in $KERNELS; do printf '%s %ss ' "$k" "${WALL[$k]}"; done | sed 's/ $//')); $( ((fail)) && echo FAILED || echo all passed)"
exit "$fail"
