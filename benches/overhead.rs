//! What tracing costs the traced, in two floods from this thread: failing
//! x86_64 shmget calls on one missing key (identical: they fold in the
//! kernel) and on one key with a different size each time (distinct: every
//! call is a line). Each flood runs bare, with the hook attached but every
//! call filtered out (`-p 1`: the floor the hook itself costs), and traced
//! by `shmget-trace --tsv` (default settings, whole host) writing to a
//! file. Meanwhile a second process (the bystander) makes 1,000 calls of
//! its own, which must all be delivered. Prints ns per call, the ratios to
//! bare and to the floor, lines and calls delivered, lost, and the
//! bystander's calls found in the output.
//!
//! Each round writes a fresh file, as users run it (`in-place` instead
//! allocates the file's page cache before the first round and writes over
//! it in every round). On a VM whose guest reports free pages to the host (virtio-balloon free
//! page reporting, as on the machine this was written on), a page the guest
//! allocates may have to be faulted in by the host first: while the page
//! cache grows into such pages, writing the TSV cost 4x as much (250 instead
//! of 60 ns per event), for seconds at a time, in some rounds and not in
//! others. That measures the VM's memory, not the tracer; `in-place` takes
//! it out.
//!
//! Each round's bare figure is the mean of a run before and one after the
//! traced runs; the verdict is on the median round. With
//! SHMGET_TRACE_BASELINE=/path/to/another/shmget-trace, each round also
//! traces with that build (the two in turns, the first alternating), so
//! that two builds are compared in one run on a noisy machine.
//!
//! Then a stopped reader: the tracer is SIGSTOPped while it sleeps, and
//! the loop runs for as many calls as fit in the ring buffer. The BPF side
//! wakes a sleeping reader once the wakeup mark is passed; a reader that
//! does not run must not make each later event pay for another wakeup.
//! Prints ns per call, bare and with the reader stopped.
//!
//! cargo bench --bench overhead [-- CALLS [ROUNDS] [in-place] [stalled]]
//! (needs root; 5 million calls, 5 rounds; `stalled`: only the stopped
//! reader)

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::PathBuf;
use std::time::Instant;

use common::syscalls::native_shmget;
use common::{Stdout, Tracer};

/// A key no test creates.
const MISSING_KEY: i32 = 0x7e57_0000;

/// The bystander's calls, on a key of its own.
const BYSTANDER_KEY: i32 = 0x7e57_0001;
const BYSTANDER_CALLS: u64 = 1000;

/// ns per failing shmget, over `calls` calls from this thread: all the
/// same, or each with another size.
fn shmget_loop(calls: u64, distinct: bool) -> f64 {
    let start = Instant::now();
    if distinct {
        for size in 0..calls {
            native_shmget(MISSING_KEY, size, 0);
        }
    } else {
        for _ in 0..calls {
            native_shmget(MISSING_KEY, 0, 0);
        }
    }
    start.elapsed().as_nanos() as f64 / calls.max(1) as f64
}

struct Traced {
    ns_per_call: f64,
    /// Calls in the output (the summary's count).
    delivered: u64,
    /// Lines in the output.
    lines: u64,
    lost: u64,
    /// The bystander's calls found in the output.
    bystander: u64,
    peak_rss_kib: u64,
    output_bytes: u64,
}

/// Lines, and the calls of process `pid`, in a TSV output (by the header's
/// `pid` and `count` columns; a build without `count` has one call a line).
fn read_output(path: &std::path::Path, pid: u32) -> (u64, u64) {
    use std::io::BufRead;
    let Ok(file) = File::open(path) else {
        return (0, 0);
    };
    let mut lines = std::io::BufReader::with_capacity(1 << 20, file).split(b'\n');
    let header = lines.next().and_then(Result::ok).unwrap_or_default();
    let header: Vec<&[u8]> = header.split(|&b| b == b'\t').collect();
    let column = |name: &[u8]| header.iter().position(|c| *c == name);
    let (pid_at, count_at) = (column(b"pid").unwrap_or(1), column(b"count"));
    let pid = pid.to_string();
    let (mut total, mut calls) = (0, 0);
    for line in lines.map_while(Result::ok) {
        total += 1;
        let cells: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        if cells.get(pid_at) == Some(&pid.as_bytes()) {
            calls += count_at
                .and_then(|i| std::str::from_utf8(cells.get(i)?).ok()?.parse().ok())
                .unwrap_or(1);
        }
    }
    (total, calls)
}

/// The tracer's output file, in a directory of its own, removed at the end.
struct OutputFile {
    dir: PathBuf,
    path: PathBuf,
    fresh: bool,
}

impl OutputFile {
    /// Unless `fresh`, fills the file with `bytes` zeros, so that its page
    /// cache exists before the first round.
    fn new(bytes: u64, fresh: bool) -> OutputFile {
        let dir = std::env::temp_dir().join(format!("shmget-trace-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.tsv");
        let mut file = File::create(&path).unwrap();
        if !fresh {
            let block = vec![0u8; 1 << 20];
            for _ in 0..bytes.div_ceil(block.len() as u64) {
                file.write_all(&block).unwrap();
            }
        }
        OutputFile { dir, path, fresh }
    }

    /// Open for a round, at offset 0: written over in place, or truncated.
    fn open(&self) -> File {
        let mut options = OpenOptions::new();
        options.write(true).truncate(self.fresh);
        options.open(&self.path).unwrap()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The build a run traces with: this one, or the baseline it is compared
/// with (SHMGET_TRACE_BASELINE).
fn start(build: Option<&str>, args: &[&str], stdout: File) -> Tracer {
    match build {
        Some(bin) => Tracer::start_build(bin, args, Stdout::File(stdout)),
        None => Tracer::start_with(args, Stdout::File(stdout)),
    }
}

/// The loop while a tracer (`build`, started with `args`) writes to
/// `output`, and the bystander makes its calls a moment after it starts.
fn traced_loop(
    calls: u64,
    distinct: bool,
    build: Option<&str>,
    args: &[&str],
    output: &OutputFile,
) -> Traced {
    // Start from clean page cache, so that writing back earlier data (the
    // build's, the last round's) does not compete with the traced run.
    nix::unistd::sync();
    let mut stdout = output.open();
    let tracer = start(build, args, stdout.try_clone().unwrap());
    let steps: Vec<String> = (0..BYSTANDER_CALLS)
        .map(|size| format!("native:{BYSTANDER_KEY}:{size}:0"))
        .collect();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let bystander = common::Workload::spawn_waiting(&steps);
    let bystander_pid = bystander.pid();
    let bystander = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        bystander.go();
    });
    let ns_per_call = shmget_loop(calls, distinct);
    bystander.join().expect("the bystander's calls");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", tracer.pid())).unwrap_or_default();
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    // Exit 0 and a summary line, or the harness says what went wrong.
    let (delivered, lost) = tracer.stop().summary();
    // The tracer's stdout shares this descriptor's offset.
    let output_bytes = stdout.stream_position().unwrap_or(0);
    let (lines, bystander) = read_output(&output.path, bystander_pid);
    Traced {
        ns_per_call,
        delivered,
        lines,
        lost,
        bystander,
        peak_rss_kib,
        output_bytes,
    }
}

/// Calls made while the reader is stopped: within the default 16 MiB ring
/// buffer (about 105,000 events), past its wakeup mark (an eighth), below
/// its pressure mark (half); distinct, so that none folds.
const STALLED_CALLS: u64 = 40_000;

/// ns per call of the loop while the tracer is stopped in its sleep, and
/// the tracer's count of events and losses.
fn stalled_reader(build: Option<&str>, output: &OutputFile) -> (f64, u64, u64) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let tracer = start(build, &["--tsv"], output.open());
    let pid = Pid::from_raw(tracer.pid() as i32);
    // Idle, it sleeps (epoll_wait, its flag raised) within 100 ms.
    std::thread::sleep(std::time::Duration::from_millis(300));
    kill(pid, Signal::SIGSTOP).expect("stop the tracer");
    let ns = shmget_loop(STALLED_CALLS, true);
    kill(pid, Signal::SIGCONT).expect("continue the tracer");
    let (delivered, lost) = tracer.stop().summary();
    (ns, delivered, lost)
}

fn print_stalled(baseline: Option<&str>, output: &OutputFile) {
    let bare = shmget_loop(STALLED_CALLS, true);
    for (name, build) in [("this build", None), ("baseline", baseline)] {
        if name == "baseline" && build.is_none() {
            continue;
        }
        let (stalled, delivered, lost) = stalled_reader(build, output);
        println!(
            "stalled reader ({name}): {STALLED_CALLS} calls while the tracer is stopped (SIGSTOP): \
             {stalled:.1} ns/call, bare {bare:.1} ns/call, ratio {:.2}; {delivered} delivered, {lost} lost",
            stalled / bare
        );
    }
}

/// A flood and build over all rounds: its name, its ratios to the floor,
/// the floor's ratios to bare, losses, and bystander calls missing.
type Summary = (String, Vec<f64>, Vec<f64>, u64, u64);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // The bystander is this binary started again as the tests' workload.
    common::workload::run_if_asked();
    // `cargo bench` passes --bench; numbers are ours.
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let calls = numbers.first().copied().unwrap_or(5_000_000);
    let rounds = numbers.get(1).copied().unwrap_or(5);
    let fresh = !std::env::args().any(|a| a == "in-place");
    let baseline = std::env::var("SHMGET_TRACE_BASELINE").ok();
    let baseline = baseline.as_deref();
    if let Some(reason) = common::bpf_unavailable() {
        println!("overhead: skipped: {reason}");
        return;
    }
    if std::env::args().any(|a| a == "stalled") {
        print_stalled(baseline, &OutputFile::new(STALLED_CALLS * 200, fresh));
        return;
    }
    println!(
        "overhead: {calls} failing shmget calls per run, {rounds} rounds; a bystander makes \
         {BYSTANDER_CALLS} calls during each traced run"
    );
    if let Some(bin) = baseline {
        println!("baseline: {bin} (rows `base`)");
    }
    // About 170 bytes a line; room for longer ones.
    let output = OutputFile::new(calls * 200, fresh);
    println!(
        "output: {}",
        if fresh {
            "a fresh file for each round (page cache allocated while tracing)"
        } else {
            "a file written over in place (page cache allocated before the rounds)"
        }
    );
    println!(
        "{:>5} {:>9} {:>9} {:>9} {:>10} {:>6} {:>6} {:>6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8}",
        "round",
        "flood",
        "bare ns",
        "floor ns",
        "traced ns",
        "floor",
        "ratio",
        "/floor",
        "calls",
        "lines",
        "lost",
        "bystander",
        "rss KiB",
        "MiB out"
    );
    // Per flood (identical, distinct) and build (this, base): ratios to
    // the floor, and losses over all rounds.
    let mut summary: Vec<Summary> = vec![];
    for round in 1..=rounds {
        for distinct in [false, true] {
            let flood = if distinct { "distinct" } else { "identical" };
            // Bare before and after: the machine's speed drifts between runs.
            let before = shmget_loop(calls, distinct);
            // pid 1 makes no shmget calls: the hook runs, and filters out all.
            let floor = traced_loop(calls, distinct, None, &["--tsv", "-p", "1"], &output);
            let base_first = round % 2 == 1;
            let mut runs: Vec<(&str, Traced)> = vec![];
            let run_base = |runs: &mut Vec<(&str, Traced)>| {
                if let Some(bin) = baseline {
                    runs.push((
                        "base",
                        traced_loop(calls, distinct, Some(bin), &["--tsv"], &output),
                    ));
                }
            };
            if base_first {
                run_base(&mut runs);
            }
            runs.push((
                "this",
                traced_loop(calls, distinct, None, &["--tsv"], &output),
            ));
            if !base_first {
                run_base(&mut runs);
            }
            let bare = (before + shmget_loop(calls, distinct)) / 2.0;
            for (build, traced) in runs {
                let name = format!("{flood} ({build})");
                let to_floor = traced.ns_per_call / floor.ns_per_call;
                match summary.iter_mut().find(|s| s.0 == name) {
                    Some(s) => {
                        s.1.push(to_floor);
                        s.2.push(floor.ns_per_call / bare);
                        s.3 += traced.lost;
                        s.4 += BYSTANDER_CALLS - traced.bystander.min(BYSTANDER_CALLS);
                    }
                    None => summary.push((
                        name,
                        vec![to_floor],
                        vec![floor.ns_per_call / bare],
                        traced.lost,
                        BYSTANDER_CALLS - traced.bystander.min(BYSTANDER_CALLS),
                    )),
                }
                println!(
                    "{round:>5} {:>9} {bare:>9.1} {:>9.1} {:>10.1} {:>6.2} {:>6.2} {to_floor:>6.2} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8.1}",
                    format!("{}{}", &flood[..3], if build == "base" { "/base" } else { "" }),
                    floor.ns_per_call,
                    traced.ns_per_call,
                    floor.ns_per_call / bare,
                    traced.ns_per_call / bare,
                    traced.delivered,
                    traced.lines,
                    traced.lost,
                    format!("{}/{BYSTANDER_CALLS}", traced.bystander),
                    traced.peak_rss_kib,
                    traced.output_bytes as f64 / (1 << 20) as f64
                );
            }
        }
    }
    for (name, to_floor, floor, lost, missed) in summary {
        println!(
            "overhead: {name}: median {:.2} x the floor (floor {:.2} x bare), {lost} lost, \
             bystander calls missing {missed}, in all rounds",
            median(to_floor),
            median(floor)
        );
    }
    print_stalled(baseline, &output);
}
