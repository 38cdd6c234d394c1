//! Running the real shmget-trace binary against the running kernel, as a
//! user would, and reading back what it printed.

#![allow(dead_code)]

#[path = "../support/syscalls.rs"]
pub mod syscalls;

#[path = "../support/expect.rs"]
pub mod expect;

pub use expect::Call;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

pub const TRACER: &str = env!("CARGO_BIN_EXE_shmget-trace");
pub const WORKLOAD: &str = env!("CARGO_BIN_EXE_shm-workload");

/// Generous: loading BPF takes well under a second, but CI machines vary.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether this test can load BPF here. Where it cannot, the test is
/// skipped with the reason printed, or fails with it when
/// SHMGET_TRACE_REQUIRE_BPF=1 (as in CI).
pub fn bpf_available() -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not running as root")
    } else if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("the kernel has no BTF")
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("SHMGET_TRACE_REQUIRE_BPF").as_deref() == Ok("1") => {
            panic!("BPF is required (SHMGET_TRACE_REQUIRE_BPF=1) but unavailable: {reason}")
        }
        Some(reason) => {
            eprintln!("skipped: BPF unavailable: {reason}");
            false
        }
    }
}

/// A key unique to this process and call site, so parallel tests and other
/// processes cannot collide with it.
pub fn unique_key(salt: u32) -> i32 {
    (0x5700_0000 | ((std::process::id() & 0xffff) << 8) | (salt & 0xff)) as i32
}

/// A running tracer whose stderr is collected line by line.
pub struct Tracer {
    child: Option<Child>,
    stderr_lines: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<thread::JoinHandle<Vec<u8>>>,
    raw_stdout: Option<std::process::ChildStdout>,
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: Vec<String>,
}

impl Tracer {
    /// Starts `shmget-trace ARGS` and waits for its `tracing` line.
    /// Its stdout is collected by a thread, so that it never blocks.
    pub fn start(args: &[&str]) -> Tracer {
        Self::start_with(args, true)
    }

    /// Its stdout is left for [`Tracer::take_stdout`].
    pub fn start_keeping_stdout(args: &[&str]) -> Tracer {
        Self::start_with(args, false)
    }

    fn start_with(args: &[&str], collect_stdout: bool) -> Tracer {
        let mut child = Command::new(TRACER)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shmget-trace");
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = stderr_lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("shmget-trace: tracing") {
                    let _ = started_tx.send(());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut raw_stdout = child.stdout.take();
        let stdout_reader = if collect_stdout {
            raw_stdout.take().map(|mut out| {
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = out.read_to_end(&mut buf);
                    buf
                })
            })
        } else {
            None
        };
        let mut tracer = Tracer {
            child: Some(child),
            stderr_lines,
            stdout_reader,
            raw_stdout,
        };
        tracer.wait_started(started_rx, args);
        tracer
    }

    fn wait_started(&mut self, started: Receiver<()>, args: &[&str]) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if started.recv_timeout(Duration::from_millis(50)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                thread::sleep(Duration::from_millis(100)); // let stderr drain
                panic!(
                    "shmget-trace {args:?} exited ({status}) before tracing; stderr:\n{}",
                    self.stderr().join("\n")
                );
            }
        }
        panic!("shmget-trace {args:?} did not start tracing within {START_TIMEOUT:?}");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The tracer's stdout, to read (and close) by hand.
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.raw_stdout
            .take()
            .expect("started with start_keeping_stdout")
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(Some(_)))
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr_lines.lock().unwrap().clone()
    }

    /// SIGINT, as Ctrl-C would, then everything it printed.
    pub fn stop(self) -> Finished {
        self.signal(Signal::SIGINT)
    }

    pub fn signal(self, signal: Signal) -> Finished {
        kill(Pid::from_raw(self.pid() as i32), signal).expect("signal tracer");
        self.wait()
    }

    /// Waits for the tracer to exit by itself (--count, --duration, EPIPE).
    pub fn wait(mut self) -> Finished {
        let mut child = self.child.take().unwrap();
        let status = wait_with_timeout(&mut child, EXIT_TIMEOUT);
        let stdout = self
            .stdout_reader
            .take()
            .map(|h| h.join().expect("stdout reader"))
            .unwrap_or_default();
        // The stderr thread ends at EOF, which follows the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && !self
                .stderr()
                .last()
                .is_some_and(|l| l.contains(" events, "))
        {
            thread::sleep(Duration::from_millis(10));
        }
        Finished {
            status,
            stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Tracer {
    /// A failed test must not leave a tracer running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

impl Finished {
    /// `--json` output, one object per line.
    pub fn json_events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// The summary that must be the last stderr line: (events, lost).
    pub fn summary(&self) -> (u64, u64) {
        let last = self.stderr.last().map(String::as_str).unwrap_or("");
        let parse = || -> Option<(u64, u64)> {
            let rest = last.strip_prefix("shmget-trace: ")?;
            let (events, rest) = rest.split_once(" events, ")?;
            let lost = rest.strip_suffix(" lost")?;
            Some((events.parse().ok()?, lost.parse().ok()?))
        };
        parse().unwrap_or_else(|| panic!("last stderr line is not the summary: {:?}", self.stderr))
    }

    /// Exactly one event per call, each right field for field, and the
    /// summary saying so with nothing lost.
    pub fn assert_reports(&self, calls: &[Call]) {
        self.assert_success();
        let events = self.json_events();
        assert_eq!(events.len(), calls.len(), "one event per call: {events:?}");
        for (event, call) in events.iter().zip(calls) {
            assert_event(event, call);
        }
        assert_eq!(self.summary(), (calls.len() as u64, 0));
    }

    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "tracer failed ({}): {:?}",
            self.status,
            self.stderr
        );
    }
}

/// A shm-workload child that waits on stdin before making its calls, so a
/// tracer can be started with its pid first.
pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Workload {
    pub fn spawn_waiting(args: &[&str]) -> Workload {
        let mut child = Command::new(WORKLOAD)
            .arg("--wait")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn shm-workload");
        let stdin = child.stdin.take();
        Workload { child, stdin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it run; returns its result lines.
    pub fn go(mut self) -> Vec<Value> {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").expect("write to workload");
        drop(stdin);
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .expect("workload stdout");
        let status = wait_with_timeout(&mut self.child, EXIT_TIMEOUT);
        assert!(status.success(), "shm-workload failed: {status}");
        out.lines()
            .map(|l| serde_json::from_str(l).expect("workload JSON"))
            .collect()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Segments a test created; removed when the test ends, pass or fail.
#[derive(Default)]
pub struct Segments(Vec<i64>);

impl Segments {
    /// Keeps `ret` for removal if it is a segment id; returns it.
    pub fn track(&mut self, ret: i64) -> i64 {
        if ret >= 0 {
            self.0.push(ret);
        }
        ret
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            syscalls::remove_segment(id);
        }
    }
}

/// Checks every field of an event against a call made by this thread.
pub fn assert_event(event: &Value, call: &Call) {
    let wrong = expect::mismatches(event, call);
    assert!(wrong.is_empty(), "event {event} is wrong: {wrong:?}");
}
