//! Startup benchmark: from exec to the `shmget-trace: tracing` line on
//! stderr, median/min/max of 20 starts, with the default mode choice
//! (`auto`) and with `--attach tracepoint` (no mode choice), so that the
//! cost of choosing shows apart. Output goes to /dev/null; each tracer is
//! stopped with SIGINT once it traces. Needs root (it loads BPF); skips
//! otherwise.
//!
//! ```sh
//! sudo cargo bench --bench startup          # 20 starts per variant
//! sudo cargo bench --bench startup -- 50    # 50 starts
//! ```

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};

const TRACER: &str = env!("CARGO_BIN_EXE_shmget-trace");

/// One start: the time to the tracing line, and that line.
fn start_once(args: &[&str]) -> Result<(Duration, String), String> {
    let started = Instant::now();
    let mut child = Command::new(TRACER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {TRACER}: {e}"))?;
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    let result = loop {
        line.clear();
        match stderr.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let status = child.wait().map_err(|e| e.to_string())?;
                break Err(format!("tracer exited ({status}) before tracing:\n{seen}"));
            }
            Ok(_) if line.starts_with("shmget-trace: tracing") => {
                break Ok((started.elapsed(), line.trim_end().to_string()));
            }
            Ok(_) => seen.push_str(&line),
        }
    };
    if result.is_ok() {
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, Signal::SIGINT).map_err(|e| format!("SIGINT: {e}"))?;
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("tracer ended with {status} after SIGINT:\n{rest}"));
        }
    }
    result
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run(label: &str, args: &[&str], starts: usize) -> Result<(), String> {
    start_once(args)?; // warm the page cache and the kernel's BTF
    let mut times = vec![];
    let mut tracing_line = String::new();
    for _ in 0..starts {
        let (time, line) = start_once(args)?;
        times.push(time);
        tracing_line = line;
    }
    times.sort();
    println!(
        "startup {label:<22} median {:7.2} ms  min {:7.2} ms  max {:7.2} ms  ({starts} starts)  [{}]",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        tracing_line.trim_start_matches("shmget-trace: tracing ")
    );
    Ok(())
}

fn main() {
    // `cargo bench` passes --bench; the one other argument is the count.
    let starts = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(20)
        .max(1);
    if !geteuid().is_root() {
        println!("startup: skipped: loading BPF programs needs root (run: sudo cargo bench --bench startup)");
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
        if let Err(err) = run(label, args, starts) {
            eprintln!("startup {label}: {err}");
            std::process::exit(1);
        }
    }
}
