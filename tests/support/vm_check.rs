//! shm-vm-check: runs inside a VM guest of the kernel matrix (tests/vm/matrix.sh).
//!
//! usage: shm-vm-check [--tracer PATH] [--bench N [--rounds R]] MODE...     (MODE: kprobe fentry tracepoint auto)
//!
//! For each MODE: starts `shmget-trace --json --attach MODE -p <own pid>`, waits for its
//! `tracing` line, makes a fixed list of calls from this thread (x86_64 shmget, ia32 shmget and
//! ia32 ipc(SHMGET) through `int $0x80`, plus two calls that are not shmget and must not be
//! reported), removes the segments it created, stops the tracer with SIGINT and checks every
//! event field for field, the event count and the summary line. Then checks that all modes
//! that passed reported the same events (time and segment ids aside).
//!
//! Output, one machine-readable line per mode (details of a failure on indented lines after it):
//!   @@MODE kprobe PASS 8 events chose=kprobe tracing=(kprobe): x86_64 shmget, ia32 shmget, ia32 ipc
//!   @@MODE fentry FAIL <reason>
//!   @@SAME PASS kprobe,fentry,tracepoint,auto
//! With --bench N, per mode: N failing x86_64 shmget calls with nothing attached, then with the
//! tracer attached (output to /dev/null); untraced is the mean of one run before and one after.
//! R rounds (default 3) with the modes interleaved; medians per mode, each round's ratio listed:
//!   @@BENCH kprobe calls=N rounds=3 base_ns=812.3 traced_ns=1630.2 ratio=2.01 ratios=1.9,2.0,2.1 events=3N lost=0 lost_rounds=0,0,0
//! Exit code: 0 if every mode passed (and the bench ran), 1 otherwise, 2 on bad usage.

#[path = "syscalls.rs"]
mod syscalls;

#[path = "expect.rs"]
mod expect;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use expect::{life_mismatches, mismatches, segment_life, Call, EntryPath};
use syscalls::*;

/// Loading BPF under TCG is slow (seconds); these bound a hung tracer.
const START_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Keys no one else uses in the guest; the same in every mode, so that the
/// modes' events can be compared.
const MISSING_KEY: i32 = 0x7e57_0001;
const EXCL_KEY: i32 = 0x5653_0002;
const BENCH_KEY: i32 = 0x7e57_0003;

#[derive(Parser)]
#[command(name = "shm-vm-check")]
struct Args {
    /// The shmget-trace binary
    #[arg(long, default_value = "/bin/shmget-trace")]
    tracer: String,
    /// Also time N failing x86_64 shmget calls per mode, untraced and traced
    #[arg(long, value_name = "N")]
    bench: Option<u64>,
    /// Bench rounds (modes interleaved in each; medians reported)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Attach modes to check
    #[arg(required = true, value_parser = ["kprobe", "fentry", "tracepoint", "auto"])]
    modes: Vec<String>,
}

/// A running tracer: stderr lines and stdout collected by threads.
struct Tracer {
    child: Option<Child>,
    stderr_rx: mpsc::Receiver<String>,
    stderr: Vec<String>,
    stdout: Option<thread::JoinHandle<String>>,
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: Vec<String>,
}

impl Tracer {
    /// Starts the tracer and waits for its `tracing` line (returned).
    fn start(
        path: &str,
        mode: &str,
        extra: &[&str],
        keep_stdout: bool,
    ) -> Result<(Tracer, String), String> {
        let pid = std::process::id().to_string();
        let mut child = Command::new(path)
            .args(["--json", "--attach", mode, "-p", &pid])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(if keep_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {path}: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().map(|mut out| {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = out.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        });
        let mut tracer = Tracer {
            child: Some(child),
            stderr_rx: rx,
            stderr: vec![],
            stdout,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match tracer.stderr_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let started = line.starts_with("shmget-trace: tracing");
                    tracer.stderr.push(line.clone());
                    if started {
                        return Ok((tracer, line));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed: it exited (or is about to).
                    let status = tracer.wait_exit();
                    return Err(format!(
                        "tracer exited ({status}) before tracing: {}",
                        tracer.stderr.join(" | ")
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "tracer did not start tracing within {START_TIMEOUT:?}; stderr: {}",
                    tracer.stderr.join(" | ")
                ));
            }
        }
    }

    /// Waits (bounded) for the child; kills it past the bound.
    fn wait_exit(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "already reaped".into();
        };
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return format!("killed: no exit within {EXIT_TIMEOUT:?}");
                }
            }
        }
    }

    /// SIGINT, as Ctrl-C would; then everything it printed.
    fn stop(mut self) -> Result<Finished, String> {
        let mut child = self.child.take().unwrap();
        if let Err(e) = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("SIGINT to the tracer failed: {e}"));
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "tracer did not exit within {EXIT_TIMEOUT:?} of SIGINT; stderr: {}",
                        self.stderr.join(" | ")
                    ));
                }
            }
        };
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        // The stderr thread ends at EOF, which follows the exit.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.stderr_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.stderr.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        Ok(Finished {
            status,
            stdout,
            stderr: std::mem::take(&mut self.stderr),
        })
    }
}

impl Drop for Tracer {
    /// A failed check must not leave a tracer running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The mode in `shmget-trace: tracing (MODE): ...`.
fn chosen_mode(tracing_line: &str) -> Option<&str> {
    let rest = tracing_line.strip_prefix("shmget-trace: tracing (")?;
    Some(&rest[..rest.find(')')?])
}

/// The fixed calls; returns them with what the kernel returned, and
/// problems with the returns themselves.
fn make_calls() -> (Vec<Call>, Vec<String>) {
    let mut problems = vec![];
    let create = IPC_CREAT | 0o600;
    let excl = IPC_CREAT | IPC_EXCL | 0o640;
    let x64 = |key, size, shmflg, flags| Call::shmget(EntryPath::X64, key, size, shmflg, flags);
    let ia32 = |call, key, size, shmflg, flags| {
        let path = if call == "ipc" {
            EntryPath::Ia32Ipc
        } else {
            EntryPath::Ia32
        };
        Call::shmget(path, key, size, shmflg, flags)
    };
    let calls = vec![
        x64(MISSING_KEY, 0, 0, "-"),
        x64(IPC_PRIVATE, 4096, create, "IPC_CREAT"),
        x64(EXCL_KEY, 8192, excl, "IPC_CREAT|IPC_EXCL"),
        x64(EXCL_KEY, 8192, excl, "IPC_CREAT|IPC_EXCL"),
        ia32("shmget", MISSING_KEY, 0, 0, "-"),
        ia32("shmget", IPC_PRIVATE, 4096, create, "IPC_CREAT"),
        ia32("ipc", MISSING_KEY, 0, 0, "-"),
        ia32("ipc", IPC_PRIVATE, 12288, create, "IPC_CREAT"),
        // Opens the segment made above: the kernel side reads its owner.
        ia32("ipc", EXCL_KEY, 0, 0, "-"),
    ];
    // Not shmget calls, must not be reported: ipc(SHMCTL, IPC_STAT) on a bad
    // id, and x86_64 syscall 117, which is setresuid (a no-op here), not ipc.
    let shmctl = ia32_ipc(IPCCALL_SHMCTL, u32::MAX, IPC_STAT as u32, 0);
    // SAFETY: setresuid(-1, -1, -1) changes nothing.
    let setresuid = unsafe { nix::libc::syscall(117, -1, -1, -1) };
    let mut ids: Vec<i64> = calls.iter().filter(|c| c.ret >= 0).map(|c| c.ret).collect();
    ids.sort_unstable();
    ids.dedup(); // the last call opens a segment made before
    for id in ids {
        if !remove_segment(id) {
            problems.push(format!("could not remove segment {id}"));
        }
    }
    let expect = [-2, 0, 0, -17, -2, 0, -2, 0, 0];
    for (i, (call, want)) in calls.iter().zip(expect).enumerate() {
        let ok = if want == 0 {
            call.ret >= 0
        } else {
            call.ret == want
        };
        if !ok {
            problems.push(format!(
                "call {i} ({} {} key 0x{:08x}) returned {} (want {})",
                call.abi,
                call.call,
                call.key as u32,
                call.ret,
                if want == 0 {
                    "an id".into()
                } else {
                    want.to_string()
                }
            ));
        }
    }
    if shmctl != -22 {
        problems.push(format!("ia32 ipc(SHMCTL) returned {shmctl}, want -22"));
    }
    if setresuid != 0 {
        problems.push(format!("setresuid(-1,-1,-1) returned {setresuid}, want 0"));
    }
    (calls, problems)
}

/// The tracer's JSON lines; a line that is not JSON is a problem.
fn parse_events(stdout: &str, details: &mut Vec<String>) -> Vec<Value> {
    let mut events = vec![];
    for line in stdout.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => events.push(v),
            Err(e) => details.push(format!("bad JSON line {line:?}: {e}")),
        }
    }
    events
}

/// With `--events all`: a segment's whole life by each entry path, every
/// event checked. Returns how many events were checked.
fn check_segment_life(tracer_path: &str, mode: &str, details: &mut Vec<String>) -> usize {
    let (tracer, _) = match Tracer::start(tracer_path, mode, &["--events", "all"], true) {
        Ok(started) => started,
        Err(e) => {
            details.push(format!("--events all: {e}"));
            return 0;
        }
    };
    let wanted: Vec<Value> = EntryPath::ALL.into_iter().flat_map(segment_life).collect();
    let done = match tracer.stop() {
        Ok(done) => done,
        Err(e) => {
            details.push(format!("--events all: {e}"));
            return 0;
        }
    };
    let events = parse_events(&done.stdout, details);
    if events.len() != wanted.len() {
        details.push(format!(
            "--events all: {} events for {} calls",
            events.len(),
            wanted.len()
        ));
    }
    for (i, (event, want)) in events.iter().zip(&wanted).enumerate() {
        for wrong in life_mismatches(event, want) {
            details.push(format!(
                "--events all, event {i} ({}): {wrong}",
                want["event"]
            ));
        }
    }
    events.len()
}

/// An event without what differs between runs: time, segment ids.
fn normalized(event: &Value) -> Value {
    let mut event = event.clone();
    if let Some(object) = event.as_object_mut() {
        object.remove("time");
        if object
            .get("ret")
            .and_then(Value::as_i64)
            .is_some_and(|r| r >= 0)
        {
            object.insert("ret".into(), "ID".into());
        }
    }
    event
}

struct ModeResult {
    events: Vec<Value>,
}

/// One mode: Ok(summary line tail) or Err(reason, details).
fn check_mode(
    tracer_path: &str,
    mode: &str,
) -> Result<(ModeResult, String), (String, Vec<String>)> {
    let (tracer, tracing_line) =
        Tracer::start(tracer_path, mode, &[], true).map_err(|e| (e, vec![]))?;
    let (calls, call_problems) = make_calls();
    let done = tracer.stop().map_err(|e| (e, vec![]))?;

    let mut details = call_problems;
    let chose = chosen_mode(&tracing_line).unwrap_or("?").to_string();
    if mode != "auto" && chose != mode {
        details.push(format!(
            "asked for {mode}, tracing line says {tracing_line:?}"
        ));
    }
    if !done.status.success() {
        details.push(format!("tracer exited with {}", done.status));
    }
    let events = parse_events(&done.stdout, &mut details);
    if events.len() != calls.len() {
        details.push(format!(
            "{} events for {} shmget calls",
            events.len(),
            calls.len()
        ));
    }
    for (i, (event, call)) in events.iter().zip(&calls).enumerate() {
        for wrong in mismatches(event, call) {
            details.push(format!("event {i} ({} {}): {wrong}", call.abi, call.call));
        }
    }
    // The segment the last call opened is this process's own.
    if let Some(opened) = events.get(calls.len() - 1) {
        let owner = (opened["owner_uid"].as_u64(), opened["creator_pid"].as_u64());
        let me = (
            Some(u64::from(nix::unistd::getuid().as_raw())),
            Some(u64::from(std::process::id())),
        );
        if owner != me {
            details.push(format!(
                "opened segment: owner and creator {owner:?}, want {me:?}"
            ));
        }
    }
    let summary = format!("shmget-trace: {} events, 0 lost", calls.len());
    let last = done.stderr.last().map(String::as_str).unwrap_or("");
    if last != summary {
        details.push(format!("last stderr line {last:?}, want {summary:?}"));
    }
    let life_events = check_segment_life(tracer_path, mode, &mut details);
    if details.is_empty() {
        Ok((
            ModeResult { events },
            format!(
                "{} events chose={chose} tracing={}",
                calls.len() + life_events,
                tracing_line.trim_start_matches("shmget-trace: tracing ")
            ),
        ))
    } else {
        let reason = details[0].clone();
        details.push(format!("tracing line: {tracing_line}"));
        details.extend(done.stderr.iter().map(|l| format!("stderr: {l}")));
        details.extend(done.stdout.lines().map(|l| format!("stdout: {l}")));
        Err((reason, details))
    }
}

/// ns per call of `calls` failing x86_64 shmget calls.
fn shmget_loop(calls: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        native_shmget(BENCH_KEY, 0, 0);
    }
    start.elapsed().as_nanos() as f64 / calls.max(1) as f64
}

struct BenchRound {
    base: f64,
    traced: f64,
    events: u64,
    lost: u64,
}

/// One round of one mode: untraced, traced, untraced again.
fn bench_round(tracer_path: &str, mode: &str, calls: u64) -> Result<BenchRound, String> {
    shmget_loop(calls.min(10_000)); // warm up
    let before = shmget_loop(calls);
    let (tracer, _) = Tracer::start(tracer_path, mode, &[], false)?;
    let traced = shmget_loop(calls);
    let done = tracer.stop();
    // TCG drifts: the baseline is the mean of a run before and one after.
    let base = (before + shmget_loop(calls)) / 2.0;
    let done = done?;
    let summary = done.stderr.last().cloned().unwrap_or_default();
    let counts = summary
        .strip_prefix("shmget-trace: ")
        .and_then(|s| s.strip_suffix(" lost"))
        .and_then(|s| s.split_once(" events, "))
        .and_then(|(e, l)| Some((e.parse().ok()?, l.parse().ok()?)));
    let (events, lost) = counts.ok_or(format!("no summary line: {:?}", done.stderr))?;
    Ok(BenchRound {
        base,
        traced,
        events,
        lost,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `rounds` rounds, the modes interleaved in each, so that a slow spell of
/// the (emulated) machine hits them alike; medians per mode. (lines, ok)
fn bench(tracer_path: &str, modes: &[String], calls: u64, rounds: u32) -> (Vec<String>, bool) {
    let mut results: Vec<Result<Vec<BenchRound>, String>> =
        modes.iter().map(|_| Ok(vec![])).collect();
    for _ in 0..rounds {
        for (mode, result) in modes.iter().zip(results.iter_mut()) {
            if let Ok(done) = result {
                match bench_round(tracer_path, mode, calls) {
                    Ok(round) => done.push(round),
                    Err(e) => *result = Err(e),
                }
            }
        }
    }
    let mut ok = true;
    let lines = modes
        .iter()
        .zip(results)
        .map(|(mode, result)| match result {
            Ok(r) if !r.is_empty() => {
                let ratios: Vec<f64> = r.iter().map(|x| x.traced / x.base).collect();
                format!(
                    "@@BENCH {mode} calls={calls} rounds={} base_ns={:.1} traced_ns={:.1} ratio={:.2} ratios={} events={} lost={} lost_rounds={}",
                    r.len(),
                    median(r.iter().map(|x| x.base).collect()),
                    median(r.iter().map(|x| x.traced).collect()),
                    median(ratios.clone()),
                    ratios.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(","),
                    r.iter().map(|x| x.events).sum::<u64>(),
                    r.iter().map(|x| x.lost).sum::<u64>(),
                    r.iter().map(|x| x.lost.to_string()).collect::<Vec<_>>().join(","),
                )
            }
            Ok(_) => format!("@@BENCH {mode} FAIL no rounds"),
            Err(e) => {
                ok = false;
                format!("@@BENCH {mode} FAIL {e}")
            }
        })
        .collect();
    (lines, ok)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut all_ok = true;
    let mut passed: Vec<(String, ModeResult)> = vec![];
    for mode in &args.modes {
        match check_mode(&args.tracer, mode) {
            Ok((result, tail)) => {
                println!("@@MODE {mode} PASS {tail}");
                passed.push((mode.clone(), result));
            }
            Err((reason, details)) => {
                all_ok = false;
                println!("@@MODE {mode} FAIL {reason}");
                for line in details {
                    println!("    {line}");
                }
            }
        }
    }
    if let Some((first_mode, first)) = passed.first() {
        let reference: Vec<Value> = first.events.iter().map(normalized).collect();
        let differing: Vec<&str> = passed
            .iter()
            .filter(|(_, r)| r.events.iter().map(normalized).collect::<Vec<_>>() != reference)
            .map(|(m, _)| m.as_str())
            .collect();
        let names: Vec<&str> = passed.iter().map(|(m, _)| m.as_str()).collect();
        if differing.is_empty() {
            println!("@@SAME PASS {}", names.join(","));
        } else {
            all_ok = false;
            println!(
                "@@SAME FAIL {} differ from {first_mode}",
                differing.join(",")
            );
        }
    }
    if let Some(calls) = args.bench {
        let (lines, ok) = bench(&args.tracer, &args.modes, calls, args.rounds);
        for line in lines {
            println!("{line}");
        }
        all_ok &= ok;
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
