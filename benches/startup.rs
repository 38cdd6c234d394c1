//! Startup benchmark: from exec to the `shmget-trace: tracing` line on
//! stderr, median/min/max of 20 starts, with the default mode choice
//! (`auto`) and with `--attach tracepoint` (no mode choice), so that the
//! cost of choosing shows apart. Output goes to /dev/null; each tracer is
//! stopped with SIGINT once it traces, through the tests' harness (which
//! also takes SHMGET_TRACE_BIN, to time another build). Needs root (it
//! loads BPF); skips otherwise.
//!
//! ```sh
//! sudo cargo bench --bench startup          # 20 starts per variant
//! sudo cargo bench --bench startup -- 50    # 50 starts
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::File;
use std::time::{Duration, Instant};

use common::{Stdout, Tracer};

/// One start: the time to the tracing line, and that line.
fn start_once(args: &[&str]) -> (Duration, String) {
    let devnull = File::create("/dev/null").expect("/dev/null");
    let started = Instant::now();
    let tracer = Tracer::start_with(args, Stdout::File(devnull));
    let time = started.elapsed();
    let line = tracer.tracing_line();
    tracer.stop(); // exit 0 and a summary, or the harness says what went wrong
    (time, line)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run(label: &str, args: &[&str], starts: usize) {
    start_once(args); // warm the page cache and the kernel's BTF
    let mut times = vec![];
    let mut tracing_line = String::new();
    for _ in 0..starts {
        let (time, line) = start_once(args);
        times.push(time);
        tracing_line = line;
    }
    times.sort();
    println!(
        "startup {label:<26} median {:7.2} ms  min {:7.2} ms  max {:7.2} ms  ({starts} starts)  [{}]",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        tracing_line.trim_start_matches("shmget-trace: tracing ")
    );
}

fn main() {
    // `cargo bench` passes --bench; the one other argument is the count.
    let starts = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(20)
        .max(1);
    if let Some(reason) = common::bpf_unavailable() {
        println!("startup: skipped: {reason} (run: sudo cargo bench --bench startup)");
        return;
    }
    let variants: [(&str, &[&str]); 2] = [
        ("--tsv (auto)", &["--tsv"]),
        (
            "--tsv --attach tracepoint",
            &["--tsv", "--attach", "tracepoint"],
        ),
    ];
    for (label, args) in variants {
        run(label, args, starts);
    }
}
