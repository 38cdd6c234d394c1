//! The one test harness: runs the tests (libtest-mimic, so that a skip is
//! visible as `ignored` with its reason), runs the real shmget-trace binary
//! as a user would and reads back what it printed, and makes this very
//! test binary the workload that tests move into cgroups or run as
//! another uid. Shared by the integration tests and the benchmarks; the
//! VM matrix runs the same test binaries inside each guest kernel.
//!
//! Environment:
//!   SHMGET_TRACE_BIN          the tracer to run (default: this build's)
//!   SHMGET_TRACE_ATTACH       an attach mode every tracer is started with
//!   SHMGET_TRACE_REQUIRE_BPF  1: a test that needs BPF fails where it is
//!                             unavailable, instead of being ignored

#![allow(dead_code, unused_imports)]

#[path = "../support/syscalls.rs"]
pub mod syscalls;

#[path = "../support/expect.rs"]
pub mod expect;

pub mod quiet;
pub mod workload;

pub use expect::Call;
pub use workload::Workload;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Generous: loading BPF takes well under a second here, but seconds in a
/// VM guest under emulation.
const START_TIMEOUT: Duration = Duration::from_secs(90);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The tracer under test.
pub fn tracer_bin() -> String {
    std::env::var("SHMGET_TRACE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_shmget-trace").into())
}

/// The attach mode this run tests (SHMGET_TRACE_ATTACH), if one was chosen.
pub fn attach_mode() -> Option<String> {
    std::env::var("SHMGET_TRACE_ATTACH")
        .ok()
        .filter(|m| !m.is_empty())
}

/// What a test needs beyond the test binary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// Loading BPF into the running kernel: root and BTF. What it checks
    /// is the same in every attach mode (the userspace side, or a test
    /// that goes through the modes itself): it runs once, in the pass with
    /// no SHMGET_TRACE_ATTACH or with `auto`.
    Bpf,
    /// Loading BPF, checking what the kernel side reports: it runs in the
    /// pass of every attach mode.
    BpfPerMode,
}

pub struct Test {
    pub name: &'static str,
    pub needs: Needs,
    pub run: fn(),
    /// The one architecture whose calls it makes (`int $0x80` is
    /// x86_64's, AArch32 callers arm64's); elsewhere it is ignored.
    pub arch: Option<&'static str>,
    /// Why what it checks is missing on this host (no huge pages, say),
    /// if it is: then it is ignored, with that reason printed.
    pub missing: Option<fn() -> Option<String>>,
}

impl Test {
    /// Runs only where the test binary is built for `arch`
    /// (`std::env::consts::ARCH`).
    pub const fn only_on(self, arch: &'static str) -> Test {
        Test {
            arch: Some(arch),
            ..self
        }
    }

    /// Ignored, with the reason printed, where `missing` says what it
    /// checks is missing on this host.
    pub const fn unless_missing(self, missing: fn() -> Option<String>) -> Test {
        Test {
            missing: Some(missing),
            ..self
        }
    }

    fn other_arch(&self) -> bool {
        self.arch.is_some_and(|arch| arch != std::env::consts::ARCH)
    }
}

/// A test that needs no BPF.
pub const fn plain(name: &'static str, run: fn()) -> Test {
    Test {
        name,
        needs: Needs::Nothing,
        run,
        arch: None,
        missing: None,
    }
}

/// A test that loads BPF, the same in every attach mode.
pub const fn bpf(name: &'static str, run: fn()) -> Test {
    Test {
        name,
        needs: Needs::Bpf,
        run,
        arch: None,
        missing: None,
    }
}

/// A test of what the kernel side reports, run in every attach mode.
pub const fn bpf_per_mode(name: &'static str, run: fn()) -> Test {
    Test {
        name,
        needs: Needs::BpfPerMode,
        run,
        arch: None,
        missing: None,
    }
}

/// Why BPF cannot be loaded here, if it cannot.
pub fn bpf_unavailable() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        Some("not running as root")
    } else if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("the kernel has no BTF")
    } else {
        None
    }
}

fn bpf_required() -> bool {
    std::env::var("SHMGET_TRACE_REQUIRE_BPF").as_deref() == Ok("1")
}

/// The test binary's main: the workload when started as one, else the
/// tests, each BPF test ignored with the reason printed where BPF is
/// unavailable, or failing with it when SHMGET_TRACE_REQUIRE_BPF=1.
pub fn main(tests: &[Test]) -> ! {
    workload::run_if_asked();
    let args = Arguments::from_args();
    let unavailable = bpf_unavailable();
    let loads_bpf = |t: &&Test| t.needs != Needs::Nothing;
    let bpf_tests = tests.iter().filter(loads_bpf).count();
    if let Some(reason) = unavailable {
        if bpf_required() {
            eprintln!("BPF is required (SHMGET_TRACE_REQUIRE_BPF=1) but unavailable: {reason}");
        } else if bpf_tests > 0 {
            eprintln!("note: {bpf_tests} tests that load BPF are ignored: {reason}");
        }
    }
    let foreign: Vec<String> = tests
        .iter()
        .filter(|t| t.other_arch())
        .map(|t| format!("{} ({})", t.name, t.arch.unwrap_or_default()))
        .collect();
    if !foreign.is_empty() {
        eprintln!(
            "note: {} tests make another architecture's system calls and are ignored on {}: {}",
            foreign.len(),
            std::env::consts::ARCH,
            foreign.join(", ")
        );
    }
    // A pass for one explicit mode runs only what depends on the mode.
    let mode_pass = attach_mode().filter(|mode| mode != "auto");
    if let Some(mode) = &mode_pass {
        let once = tests.iter().filter(|t| t.needs == Needs::Bpf).count();
        eprintln!(
            "note: every tracer runs with --attach {mode}; {once} tests that are the same in \
             every mode are ignored here (they run in the pass without a mode, or with auto)"
        );
    }
    let trials = tests
        .iter()
        .map(|test| {
            let run = test.run;
            let ignored = Trial::test(test.name, || Ok(())).with_ignored_flag(true);
            let missing = test.missing.and_then(|missing| missing());
            if let Some(why) = &missing {
                eprintln!("note: {} is ignored here: {why}", test.name);
            }
            match (test.needs, unavailable) {
                _ if test.other_arch() || missing.is_some() => ignored,
                (Needs::Nothing, _) => Trial::test(test.name, move || {
                    run();
                    Ok(())
                }),
                (_, Some(reason)) if bpf_required() => Trial::test(test.name, move || {
                    Err(Failed::from(format!(
                        "BPF is required (SHMGET_TRACE_REQUIRE_BPF=1) but unavailable: {reason}"
                    )))
                }),
                (_, Some(_)) => ignored,
                (Needs::Bpf, None) if mode_pass.is_some() => ignored,
                (_, None) => Trial::test(test.name, move || {
                    run();
                    Ok(())
                }),
            }
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// The AArch32 workload (tests/support/arm32-workload.c, static armhf),
/// where SHMGET_TRACE_ARM32_WORKLOAD says or in the VM guests' /vm.
pub fn arm32_workload() -> String {
    let path = std::env::var("SHMGET_TRACE_ARM32_WORKLOAD")
        .unwrap_or_else(|_| "/vm/arm32-workload".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "the AArch32 workload {path} is missing: tests/vm/matrix.sh --arch arm64 builds it; \
         SHMGET_TRACE_ARM32_WORKLOAD names another"
    );
    path
}

/// A key unique to this process and call site, so parallel tests and other
/// processes cannot collide with it.
pub fn unique_key(salt: u32) -> i32 {
    (0x5700_0000 | ((std::process::id() & 0xffff) << 8) | (salt & 0xff)) as i32
}

/// Where a tracer's stdout goes.
pub enum Stdout {
    /// Collected by a thread, returned by [`Tracer::stop`].
    Collect,
    /// Left as a pipe for [`Tracer::take_stdout`].
    Pipe,
    /// Into a file, as users redirect it.
    File(File),
}

/// A running tracer whose stderr is collected line by line.
pub struct Tracer {
    child: Option<Child>,
    args: Vec<String>,
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
    /// Starts `shmget-trace ARGS` (with `--attach` of this run, unless the
    /// arguments name one) and waits for its `tracing` line.
    pub fn start(args: &[&str]) -> Tracer {
        Self::start_with(args, Stdout::Collect)
    }

    pub fn start_with(args: &[&str], stdout: Stdout) -> Tracer {
        Self::spawn(&[&tracer_bin()], args, stdout, &[])
    }

    /// As `start_with`, with these environment variables (TZ, COLUMNS).
    pub fn start_with_env(args: &[&str], stdout: Stdout, env: &[(&str, &str)]) -> Tracer {
        Self::spawn(&[&tracer_bin()], args, stdout, env)
    }

    /// Starts it as the last arguments of `wrapper` (a command that sets
    /// something up and then execs it), with its stdout collected.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Tracer {
        Self::spawn(
            &[wrapper, &[&tracer_bin()]].concat(),
            args,
            Stdout::Collect,
            &[],
        )
    }

    /// Starts another build of shmget-trace (the benchmark compares two).
    pub fn start_build(bin: &str, args: &[&str], stdout: Stdout) -> Tracer {
        Self::spawn(&[bin], args, stdout, &[])
    }

    /// `command` (a program and its first arguments), then `args`.
    fn spawn(command: &[&str], args: &[&str], stdout: Stdout, env: &[(&str, &str)]) -> Tracer {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if let Some(mode) = attach_mode() {
            if !args.iter().any(|a| a == "--attach") {
                args.extend(["--attach".into(), mode]);
            }
        }
        let stdout_to = match &stdout {
            Stdout::File(file) => Stdio::from(file.try_clone().expect("dup output file")),
            _ => Stdio::piped(),
        };
        let mut child = Command::new(command[0])
            .args(&command[1..])
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout_to)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shmget-trace");
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = stderr_lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let started = line.starts_with("shmget-trace: tracing");
                lines.lock().unwrap().push(line);
                if started {
                    let _ = started_tx.send(());
                }
            }
        });
        let mut raw_stdout = child.stdout.take();
        let stdout_reader = match stdout {
            Stdout::Collect => raw_stdout.take().map(|mut out| {
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = out.read_to_end(&mut buf);
                    buf
                })
            }),
            _ => None,
        };
        let mut tracer = Tracer {
            child: Some(child),
            args,
            stderr_lines,
            stdout_reader,
            raw_stdout,
        };
        tracer.wait_started(started_rx);
        tracer
    }

    fn wait_started(&mut self, started: Receiver<()>) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if started.recv_timeout(Duration::from_millis(50)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                thread::sleep(Duration::from_millis(100)); // let stderr drain
                panic!(
                    "shmget-trace {:?} exited ({status}) before tracing; stderr:\n{}",
                    self.args,
                    self.stderr().join("\n")
                );
            }
        }
        panic!(
            "shmget-trace {:?} did not start tracing within {START_TIMEOUT:?}",
            self.args
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The tracer's stdout, to read (and close) by hand.
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.raw_stdout.take().expect("started with Stdout::Pipe")
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(Some(_)))
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr_lines.lock().unwrap().clone()
    }

    /// The `tracing (MODE): coverage` line.
    pub fn tracing_line(&self) -> String {
        self.stderr()
            .into_iter()
            .find(|l| l.starts_with("shmget-trace: tracing"))
            .expect("started tracers have printed it")
    }

    /// SIGINT, as Ctrl-C would; it must exit 0 with its summary last.
    pub fn stop(self) -> Finished {
        self.signal(Signal::SIGINT)
    }

    /// Ends it with `signal`; it must exit 0 with its summary last.
    pub fn signal(self, signal: Signal) -> Finished {
        kill(Pid::from_raw(self.pid() as i32), signal).expect("signal tracer");
        let done = self.wait();
        done.assert_success();
        done.summary();
        done
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
        assert_eq!(
            events.len(),
            calls.len(),
            "one event per call: {events:?}; stderr: {:?}",
            self.stderr
        );
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

/// A directory made for a test, removed with what it holds when the test
/// ends, failed or not.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A cgroup made for a test, removed when the test ends (after the
/// processes in it have gone: see [`Workload`]).
pub struct TempCgroup(pub std::path::PathBuf);

impl TempCgroup {
    /// A new cgroup under the cgroup2 root.
    pub fn new(name: &str) -> TempCgroup {
        let mount = expect::cgroup2_mount().expect("a cgroup2 mount on a host that can load BPF");
        let path = std::path::Path::new(&mount).join(name);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempCgroup(path)
    }

    /// Its path from the cgroup2 root, as the tracer prints it.
    pub fn relative(&self) -> String {
        let mount = expect::cgroup2_mount().unwrap();
        format!("/{}", self.0.strip_prefix(&mount).unwrap().display())
    }

    pub fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .expect("move a process into the cgroup");
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Checks every field of an event against a call made by this thread.
pub fn assert_event(event: &Value, call: &Call) {
    let wrong = expect::mismatches(event, call);
    assert!(wrong.is_empty(), "event {event} is wrong: {wrong:?}");
}
