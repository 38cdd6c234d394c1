#!/bin/sh
# Runs inside a VM of the kernel matrix (tests/vm/matrix.sh), started by run-in-vm.sh's /init:
# the project's own test binaries, once per attach mode, with marker lines the host parses.
# busybox sh only; nothing here depends on the architecture.
#
# Usage (in the guest): guest-tests.sh [--threads N] [--timeout SECS] MODE...
#   Test binaries: every executable in /vm/tests (copied there by matrix.sh); the tracer they
#   run: /bin/shmget-trace.
#   --timeout  per test binary and mode (busybox timeout, then everything it left is killed).
# Markers (each on a line of its own):
#   @@KERNEL <uname -r> <uname -m>
#   @@CMDLINE <the kernel's command line>
#   @@STRACE <strace -V's first line, or "missing">   (/usr/bin/strace, bundled by matrix.sh)
#   @@AUTO <mode auto chose, or ?>          from one `shmget-trace -v --attach auto` run
#   @@BEGIN <mode> <binary>                 then the test binary's own output (stdout+stderr)
#   @@UNAVAILABLE <mode> <the tracer's one-line refusal>   a mode this kernel cannot do (arm64
#                                           5.10 and 6.1: fentry); its binaries are not run
#   @@RETRY <mode> <binary> <test>         a failed test run again, alone (its output follows;
#                                           up to three times, until it passes)
#   @@FLAKY <mode> <binary> <test>         ... which passed then
#   @@RESULT <mode> <binary> <rc> <passed> <failed> <ignored>   (counts -1: no `test result:`;
#                                           after retries that all passed: rc 0, none failed)
#   @@DONE
# Exit code: 0 when every binary exited 0 in every mode, else 1.

threads=2
timeout=240
while [ $# -gt 0 ]; do
    case $1 in
        --threads) threads=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || set -- kprobe fentry tracepoint auto

TRACER=/bin/shmget-trace
OUT=/tmp/guest-tests.out
echo "@@KERNEL $(uname -r) $(uname -m)"
echo "@@CMDLINE $(cat /proc/cmdline)"
if command -v strace >/dev/null; then echo "@@STRACE $(strace -V 2>&1 | head -n 1)"; else echo "@@STRACE missing"; fi

# Which mode auto takes here, and that the tracer runs at all.
"$TRACER" -v --attach auto --tsv -d 0.2 >"$OUT" 2>&1 </dev/null
rc=$?
# Its own lines (libbpf's log is thousands); all of it when it failed.
if [ "$rc" = 0 ]; then grep -v '^libbpf: ' "$OUT"; else tail -n 40 "$OUT"; fi | sed 's/^/auto| /'
chose=$(sed -n 's/^shmget-trace: \([a-z]*\): used$/\1/p' "$OUT" | head -n 1)
echo "@@AUTO ${chose:-?} $rc"

status=0
for mode in "$@"; do
    # A mode the kernel cannot do is refused in one line: say so (matrix.sh decides whether that
    # was expected of this kernel) rather than fail every test of the mode.
    if [ "$mode" != auto ]; then
        "$TRACER" --attach "$mode" --tsv -d 0.1 >"$OUT" 2>&1 </dev/null
        refusal=$(grep -m 1 'is not possible on this kernel' "$OUT")
        if [ -n "$refusal" ]; then
            echo "@@UNAVAILABLE $mode $refusal"
            continue
        fi
    fi
    for t in /vm/tests/*; do
        [ -x "$t" ] || continue
        name=${t##*/}
        echo "@@BEGIN $mode $name"
        # Output is shown as it comes (a hang shows where) and kept for the counts.
        {
            SHMGET_TRACE_ATTACH=$mode SHMGET_TRACE_BIN=$TRACER SHMGET_TRACE_REQUIRE_BPF=1 \
                RUST_BACKTRACE=1 timeout -s KILL "$timeout" \
                "$t" --test-threads "$threads" </dev/null 2>&1
            echo $? >/tmp/guest-tests.rc
        } | tee "$OUT"
        rc=$(cat /tmp/guest-tests.rc)
        if [ "$rc" = 137 ]; then
            echo "guest-tests: $name ($mode) killed after ${timeout}s"
        fi
        # A test binary that died or timed out may have left tracers or workloads behind:
        # end every process but this shell and init, so the next run starts clean.
        if [ "$rc" != 0 ]; then kill -9 -1 2>/dev/null; sleep 0.2; fi
        # "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ..."
        counts=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 \2 \3/p' "$OUT" | tail -n 1)
        # Tests that failed (not a binary that died or hung) run once more, each alone: under
        # TCG a test has failed once in dozens of matrix runs and never again (arm64 6.12,
        # tracepoint, no event seen). One that passes then is reported as flaky, with the
        # output of its failure above; the cell passes but says so.
        set -- $counts
        if [ "$rc" = 101 ] && [ -n "$counts" ] && [ "$2" -gt 0 ]; then
            failed=$(awk '/^failures:$/ { n++; next } n == 2 && /^    [A-Za-z0-9_:]+$/ { print $1 }' "$OUT")
            again=0
            for test in $failed; do
                # Up to three more runs, a second apart: the failure seen (arm64, tracepoint,
                # a call not reported) came with the host's CPUs overcommitted, and once
                # failed again when run at once.
                for attempt in 1 2 3; do
                    echo "@@RETRY $mode $name $test"
                    SHMGET_TRACE_ATTACH=$mode SHMGET_TRACE_BIN=$TRACER SHMGET_TRACE_REQUIRE_BPF=1 \
                        RUST_BACKTRACE=1 timeout -s KILL "$timeout" \
                        "$t" --exact "$test" --test-threads 1 </dev/null 2>&1
                    if [ $? = 0 ]; then
                        echo "@@FLAKY $mode $name $test"
                        again=$((again + 1))
                        break
                    fi
                    kill -9 -1 2>/dev/null; sleep 1
                done
            done
            if [ "$again" = "$2" ] && [ -n "$failed" ]; then
                rc=0 counts="$(($1 + $2)) 0 $3"
            fi
        fi
        echo "@@RESULT $mode $name $rc ${counts:--1 -1 -1}"
        [ "$rc" = 0 ] || status=1
    done
done
echo "@@DONE"
exit $status
