//! The binary as a user runs it: options, filters, how it stops, and what
//! it says when something is wrong.

mod common;

#[path = "support/docs.rs"]
mod docs;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::syscalls::*;
use common::*;
use nix::sys::signal::Signal;

fn run_tracer(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tracer_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tracer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(args: &[&str], code: i32, needle: &str) {
    let (status, stdout, stderr) = run_tracer(args);
    assert_eq!(status, code, "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?} printed to stdout: {stdout}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr:?}"
    );
    assert!(stderr.starts_with("shmget-trace: "), "{stderr:?}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr:?}");
}

fn bad_options_give_one_clear_line() {
    assert_one_line_error(&["--bogus"], 2, "unexpected argument '--bogus'");
    assert_one_line_error(
        &["--pid", "abc"],
        2,
        "invalid value 'abc' for '--pid <PID>'",
    );
    assert_one_line_error(&["--pid", "0"], 2, "a whole number from 1 up");
    assert_one_line_error(&["--ringbuf-size", "3000"], 2, "power of two");
    assert_one_line_error(&["--ringbuf-size", "16X"], 2, "unit must be K, M or G");
    assert_one_line_error(&["--key", "0xfffffffff"], 2, "32-bit key");
    assert_one_line_error(&["--name", "0123456789abcdef"], 2, "at most 15");
    assert_one_line_error(&["--attach", "uprobe"], 2, "invalid value 'uprobe'");
    assert_one_line_error(&["--tsv", "--json"], 2, "cannot be used with");
    assert_one_line_error(&["--duration", "0"], 2, "must be more than 0 seconds");
    assert_one_line_error(&["--duration=-1"], 2, "must be more than 0 seconds");
    assert_one_line_error(&["--count", "0"], 2, "--count");
}

fn help_and_version_exit_zero() {
    let (status, stdout, _) = run_tracer(&["--help"]);
    assert_eq!(status, 0);
    for option in [
        "--cgroup",
        "--events",
        "--pid",
        "--tid",
        "--uid",
        "--name",
        "--key",
        "--failed",
        "--duration",
        "--count",
        "--tsv",
        "--json",
        "--attach",
        "--ringbuf-size",
        "--verbose",
    ] {
        assert!(stdout.contains(option), "--help lacks {option}");
    }
    let (status, stdout, _) = run_tracer(&["-V"]);
    assert_eq!(status, 0);
    // shmget-trace 0.1.0 (x86_64-unknown-linux-gnu, git 0123456789ab)
    let facts = stdout
        .trim()
        .strip_prefix(&format!("shmget-trace {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|rest| rest.split_once(", git "));
    let Some((target, revision)) = facts else {
        panic!("-V: {stdout:?}");
    };
    assert!(
        target.starts_with(&format!("{}-", std::env::consts::ARCH)),
        "{stdout}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success());
    match head {
        Some(head) => assert_eq!(revision, String::from_utf8_lossy(&head.stdout).trim()),
        // A VM guest has no git (nor the source): the form, at least.
        None => assert!(
            revision == "unknown"
                || (revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit())),
            "{stdout}"
        ),
    }
}

/// --help fits the terminal it is shown in (COLUMNS, as a shell exports
/// it, stands for the terminal here), up to 120 columns.
fn help_wraps_to_the_terminal_width() {
    for width in [60, 100] {
        let out = Command::new(tracer_bin())
            .arg("--help")
            .env("COLUMNS", width.to_string())
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= width, "wider than {width}: {text}");
        assert!(
            widest > width - 10,
            "{width} columns, {widest} used: {text}"
        );
    }
}

/// A bad value gets one line that lists the valid ones and names the
/// nearest; no message says something untrue of the value given.
fn bad_values_list_the_valid_ones_and_the_nearest() {
    let attach = "invalid value 'tp' for '--attach <MODE>'; did you mean 'tracepoint'? \
                  (possible values: auto, kprobe, fentry, tracepoint)";
    assert_one_line_error(&["--attach", "tp"], 2, attach);
    assert_one_line_error(
        &["-T", "loc"],
        2,
        "did you mean 'local'? (possible values: local,",
    );
    assert_one_line_error(
        &["-o", "pid,comn"],
        2,
        "unknown column 'comn'; did you mean 'comm'? (valid: time, pid,",
    );
    assert_one_line_error(&["--errno", "enoent,EEXSIT"], 2, "did you mean 'EEXIST'?");
    assert_one_line_error(&["--errno", "ERRNO_300"], 2, "only errors below 256");
    assert_one_line_error(&["--events", "shmgt"], 2, "did you mean 'shmget'?");
    assert_one_line_error(&["-d", "1e9"], 2, "must be less than 1000000000 seconds");
    assert_one_line_error(&["-d", "soon"], 2, "must be a number of seconds");
    assert_one_line_error(
        &["-p", "-1"],
        2,
        "invalid value '-1' for '--pid <PID>': a process or thread id is a whole number from 1 up",
    );
    assert_one_line_error(
        &["-u", "-1"],
        2,
        "a user id is a whole number from 0 to 4294967294",
    );
    assert_one_line_error(
        &["-p", "1,2,3,4,5,6,7,8", "-p", "9"],
        2,
        "-p/--pid takes at most 8 process ids",
    );
    assert_one_line_error(&["-u", "0,1,2,3,4,5,6,7,8"], 2, "-u/--uid takes at most 8");
    assert_one_line_error(&["--append"], 2, "--output <FILE>");
    assert_one_line_error(&["--tsv", "--wide"], 2, "cannot be used with");
    assert_one_line_error(&["--json", "-o", "pid"], 2, "cannot be used with");
    assert_one_line_error(&["-n", "a", "--name-exact", "a"], 2, "cannot be used with");
    // Opened before BPF is loaded: the error comes at once, and escaped.
    assert_one_line_error(
        &["--output", "/no/such\x1b[31m/dir"],
        1,
        "--output /no/such\\x1b[31m/dir: No such file or directory",
    );
}

/// The man page and the completions in doc/ are what the options give
/// (`cargo run --example gen-docs` writes them anew).
fn man_page_and_completions_are_current() {
    // Compiled in, so that the check runs where the source is not (a VM).
    let checked_in: [&str; 4] = [
        include_str!("../doc/shmget-trace.1"),
        include_str!("../doc/completions/shmget-trace.bash"),
        include_str!("../doc/completions/_shmget-trace"),
        include_str!("../doc/completions/shmget-trace.fish"),
    ];
    let generated = docs::generate();
    assert_eq!(generated.len(), checked_in.len());
    for ((path, text), kept) in generated.iter().zip(checked_in) {
        assert!(
            text == kept.as_bytes(),
            "{path} is not what the options give: run `cargo run --example gen-docs`"
        );
    }
    let (man, bash) = (checked_in[0], checked_in[1]);
    for option in ["--columns", "--errno", "--name-exact", "--time", "--output"] {
        let roff = option.replace('-', "\\-");
        assert!(man.contains(&roff), "the man page lacks {option}");
        assert!(bash.contains(option), "bash completion lacks {option}");
    }
}

/// With every capability gone, bounding set included, even root cannot
/// load BPF; the message names what is missing.
fn missing_capabilities_are_named() {
    let tracer = tracer_bin();
    let out = workload::command(&["--exec-without-capabilities", &tracer, "--tsv"])
        .stdin(Stdio::null())
        .output()
        .expect("run the tracer without capabilities");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with("shmget-trace: missing privileges")
            && stderr.contains("CAP_BPF")
            && stderr.contains("CAP_PERFMON"),
        "{stderr:?}"
    );
}

fn count_ends_the_trace_by_itself() {
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--tsv", "-t", &tid, "--count", "2"]);
    let key = unique_key(10);
    // Different sizes: identical calls in quick succession would fold.
    for size in 0..5 {
        native_shmget(key, size, 0);
    }
    let done = tracer.wait();
    done.assert_success();
    assert_eq!(
        done.stdout.lines().count(),
        3,
        "header and two events: {}",
        done.stdout
    );
    assert_eq!(done.summary(), (2, 0));
}

fn duration_ends_the_trace_by_itself() {
    let tid = gettid().to_string();
    let started = Instant::now();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--duration", "0.5"]);
    native_shmget(unique_key(11), 0, 0);
    let done = tracer.wait();
    done.assert_success();
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(done.json_events().len(), 1);
    assert_eq!(done.summary(), (1, 0));
}

fn sigterm_stops_like_sigint() {
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid]);
    native_shmget(unique_key(12), 0, 0);
    let done = tracer.signal(Signal::SIGTERM);
    done.assert_success();
    assert_eq!(done.json_events().len(), 1);
    assert_eq!(done.summary(), (1, 0));
}

/// A dropped ssh session (SIGHUP) and SIGQUIT end the run as Ctrl-C does:
/// every event written, the summary last, exit 0. SIGUSR1 prints the
/// counts so far and tracing goes on.
fn hangup_quit_and_usr1() {
    let tid = gettid().to_string();
    for (i, signal) in [Signal::SIGHUP, Signal::SIGQUIT].into_iter().enumerate() {
        let tracer = Tracer::start(&["--json", "-t", &tid]);
        native_shmget(unique_key(40 + i as u32), 0, 0);
        let done = tracer.signal(signal);
        assert_eq!(done.json_events().len(), 1, "{signal}");
        assert_eq!(done.summary(), (1, 0), "{signal}");
    }
    let tracer = Tracer::start(&["--json", "-t", &tid]);
    let key = unique_key(42);
    native_shmget(key, 0, 0);
    native_shmget(key, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut counts = None;
    while counts.is_none() && Instant::now() < deadline {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(tracer.pid() as i32),
            Signal::SIGUSR1,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        counts = tracer
            .stderr()
            .into_iter()
            .find(|l| l.ends_with(" lost") && l.contains(" events so far, "));
    }
    assert_eq!(
        counts.as_deref(),
        Some("shmget-trace: 2 events so far, 0 lost"),
        "{:?}",
        tracer.stderr()
    );
    native_shmget(key, 0, 0);
    let done = tracer.stop();
    assert_eq!(done.json_events().len(), 3);
    assert_eq!(done.summary(), (3, 0));
}

/// When the output fills up (here a file-size limit), the summary counts
/// only the events written out whole, and says how many were not. The
/// calls fit in one output block and are made before its first flush, so
/// every one of them is accounted for.
fn full_output_counts_only_what_was_written() {
    use std::os::unix::process::CommandExt;
    const CALLS: u64 = 300;
    let dir = TempDir::new("shmget-trace-full");
    let path = dir.0.join("out.tsv");
    let file = std::fs::File::create(&path).unwrap();
    let mut command = Command::new(tracer_bin());
    command
        .args(["--tsv", "-t", &gettid().to_string()])
        .stdout(file)
        .stderr(Stdio::piped());
    if let Some(mode) = attach_mode() {
        command.args(["--attach", &mode]);
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // Writes past 20000 bytes fail with EFBIG instead of killing.
            nix::libc::signal(nix::libc::SIGXFSZ, nix::libc::SIG_IGN);
            let limit = nix::libc::rlimit {
                rlim_cur: 20_000,
                rlim_max: 20_000,
            };
            nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("shmget-trace: tracing"), "{first}");
    let key = unique_key(43);
    // Different sizes: one line per call (identical ones would fold).
    for size in 0..CALLS {
        native_shmget(key, size, 0);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGINT,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    let output = std::fs::read(&path).unwrap();
    let whole_lines = output.iter().filter(|&&b| b == b'\n').count() as u64 - 1; // header
    let lines: Vec<&str> = rest.lines().collect();
    let summary = lines
        .iter()
        .find(|l| l.ends_with(" lost"))
        .unwrap_or_else(|| panic!("no summary: {lines:?}"));
    let (events, lost) = summary
        .trim_start_matches("shmget-trace: ")
        .trim_end_matches(" lost")
        .split_once(" events, ")
        .map(|(e, l)| (e.parse::<u64>().unwrap(), l.parse::<u64>().unwrap()))
        .unwrap();
    let unwritten: u64 = lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("shmget-trace: ")?
                .split_once(" events not written: ")
        })
        .map(|(n, why)| {
            assert!(why.contains("too large"), "{why}");
            n.parse().unwrap()
        })
        .unwrap_or_else(|| panic!("no word of the events not written: {lines:?}"));
    assert_eq!(events, whole_lines, "{lines:?}");
    assert_eq!(events + unwritten + lost, CALLS, "{lines:?}");
    assert!(unwritten > 0);
    assert_eq!(
        status.code(),
        Some(1),
        "a full output is an error: {lines:?}"
    );
    assert!(
        lines.last().unwrap().contains("cannot write output"),
        "{lines:?}"
    );
}

/// Once attached, the tracer holds only CAP_BPF and CAP_DAC_READ_SEARCH
/// (of what it had: all, as root), and still reports calls with their
/// cgroup path.
fn capabilities_are_dropped_once_attached() {
    let tracer = Tracer::start(&["--json", "-t", &gettid().to_string()]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", tracer.pid())).unwrap();
    let set = |name: &str| {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {status}"));
        u64::from_str_radix(hex.trim(), 16).unwrap()
    };
    const KEPT: u64 = 1 << 2 | 1 << 39; // CAP_DAC_READ_SEARCH, CAP_BPF
    for name in ["CapEff:", "CapPrm:"] {
        assert_eq!(set(name), KEPT, "{name} {:#x}", set(name));
    }
    assert_eq!(set("CapInh:"), 0);
    Call::shmget(expect::EntryPath::X64, unique_key(45), 0, 0, "-");
    let done = tracer.stop();
    let events = done.json_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["cgroup_path"], expect::own_cgroup_path().unwrap());
}

/// The second way into the kernel that this process can take itself, as
/// a workload step and the `call` it is reported with: x86_64's ia32 ipc();
/// on arm64, whose 32-bit callers need a 32-bit process, the native one.
#[cfg(target_arch = "x86_64")]
const OTHER_PATH: (&str, &str) = ("ia32-ipc", "ipc");
#[cfg(not(target_arch = "x86_64"))]
const OTHER_PATH: (&str, &str) = ("native", "shmget");

/// shmget(key, 0, 0) through OTHER_PATH.
fn other_path_shmget(key: i32) -> i64 {
    #[cfg(target_arch = "x86_64")]
    return ia32_ipc_shmget(key, 0, 0);
    #[cfg(not(target_arch = "x86_64"))]
    return native_shmget(key, 0, 0);
}

/// -p: only the given process; the test's own calls are left out.
fn pid_filter_keeps_only_that_process() {
    let key = unique_key(13);
    let key_arg = format!("{key}");
    let workload = Workload::spawn_waiting(&[
        &format!("native:{key_arg}:0:0"),
        &format!("{}:{key_arg}:0:0", OTHER_PATH.0),
    ]);
    let pid = workload.pid().to_string();
    let tracer = Tracer::start(&["--json", "-p", &pid]);
    native_shmget(key, 0, 0); // another process: not reported
    let results = workload.go();
    let done = tracer.stop();
    done.assert_success();
    let events = done.json_events();
    assert_eq!(events.len(), 2, "{events:?}");
    for (event, result) in events.iter().zip(&results) {
        assert_eq!(event["pid"], result["pid"]);
        assert_eq!(event["tid"], result["tid"]);
        assert_eq!(event["ret"], result["ret"]);
        assert_eq!(event["comm"], "shm-workload");
    }
    assert_eq!(events[0]["call"], "shmget");
    assert_eq!(events[1]["call"], OTHER_PATH.1);
}

/// -x: only failed calls.
fn failed_filter_keeps_only_failures() {
    let mut segments = Segments::default();
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "-x"]);
    let created = segments.track(native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600));
    let missing = native_shmget(unique_key(14), 0, 0);
    let done = tracer.stop();
    assert!(created >= 0);
    let events = done.json_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["ret"], missing);
    assert_eq!(events[0]["errno"], "ENOENT");
}

/// -k: only the given key, in hex or decimal.
fn key_filter_keeps_only_that_key() {
    let tid = gettid().to_string();
    let wanted = unique_key(15);
    let other = unique_key(16);
    // One tracer at a time: some kernels (Debian's 6.1) refuse a second
    // fexit program on a function while one is attached.
    for key in [format!("0x{:x}", wanted), wanted.to_string()] {
        let tracer = Tracer::start(&["--json", "-t", &tid, "-k", &key]);
        native_shmget(other, 0, 0);
        native_shmget(wanted, 0, 0);
        other_path_shmget(other);
        other_path_shmget(wanted);
        let events = tracer.stop().json_events();
        assert_eq!(events.len(), 2, "{events:?}");
        for event in &events {
            assert_eq!(event["key"], format!("0x{:08x}", wanted));
        }
    }
}

/// `shmget-trace --tsv | head -3`: when the reader goes, so do we, quietly.
fn closed_stdout_ends_quietly() {
    let tid = gettid().to_string();
    let mut tracer = Tracer::start_with(&["--tsv", "-t", &tid], Stdout::Pipe);
    let stdout = tracer.take_stdout();
    let key = unique_key(17);
    for _ in 0..2 {
        native_shmget(key, 0, 0);
    }
    let mut reader = BufReader::new(stdout);
    for _ in 0..3 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a line");
        assert!(line.ends_with('\n'));
    }
    drop(reader);
    // Events keep coming; the next write finds the pipe closed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tracer.exited() && Instant::now() < deadline {
        native_shmget(key, 0, 0);
        std::thread::sleep(Duration::from_millis(5));
    }
    let done = tracer.wait();
    done.assert_success();
    assert!(
        done.stderr
            .iter()
            .all(|l| !l.to_lowercase().contains("error") && !l.contains("panicked")),
        "{:?}",
        done.stderr
    );
}

/// The explicit modes, cheapest for the host first: the order `auto`
/// tries them in.
const MODES_CHEAPEST_FIRST: [&str; 3] = ["fentry", "kprobe", "tracepoint"];

/// Whether `shmget-trace --attach MODE` traces on this kernel: `Err(its
/// one error line)` when it refuses.
fn try_attach(mode: &str, tid: &str) -> Result<(), String> {
    let mut child = Command::new(tracer_bin())
        .args(["--json", "-t", tid, "--attach", mode, "--duration", "0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    std::io::copy(&mut stderr, &mut std::io::sink()).unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(90));
    if first.starts_with("shmget-trace: tracing") {
        assert!(status.success(), "{mode}: {status}");
        return Ok(());
    }
    assert_eq!(status.code(), Some(1), "{mode}: {first}");
    Err(first.trim_end().to_string())
}

/// Every mode either traces, and then reports a native and a 32-bit call
/// field for field, or is refused with the reason in one line. The BTF
/// tracepoint works on every kernel this tool supports; kprobe mode works
/// exactly where the kernel has kprobes.
fn attach_modes_trace_or_say_why() {
    let tid = gettid().to_string();
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    for mode in MODES_CHEAPEST_FIRST {
        match try_attach(mode, &tid) {
            Ok(()) => {
                assert!(mode != "kprobe" || kprobes, "kprobe mode without kprobes?");
                let tracer = Tracer::start(&["--json", "-t", &tid, "--attach", mode]);
                let x64 = expect::EntryPath::X64;
                #[allow(unused_mut)]
                let mut calls = vec![Call::shmget(x64, unique_key(18), 0, 0, "-")];
                #[cfg(target_arch = "x86_64")]
                calls.push(Call::shmget(
                    expect::EntryPath::Ia32Ipc,
                    unique_key(19),
                    0,
                    0,
                    "-",
                ));
                let line = tracer.tracing_line();
                assert!(line.contains(&format!("({mode})")), "{line}");
                tracer.stop().assert_reports(&calls);
            }
            Err(line) => {
                assert!(mode != "tracepoint", "tracepoint mode refused: {line}");
                assert!(
                    line.starts_with(&format!("shmget-trace: --attach {mode} is not possible")),
                    "{line}"
                );
                if mode == "kprobe" {
                    assert!(!kprobes, "kprobes exist, yet: {line}");
                    assert!(line.contains("no kprobes"), "{line}");
                }
                if mode == "fentry" {
                    assert!(line.contains("fentry"), "{line}");
                }
            }
        }
    }
}

/// `auto` takes the cheapest mode that works on this kernel, whatever that
/// is here, and `-v` says why each cheaper one was not used.
fn auto_takes_the_cheapest_mode_that_works() {
    let tid = gettid().to_string();
    let works: Vec<&str> = MODES_CHEAPEST_FIRST
        .into_iter()
        .filter(|mode| try_attach(mode, &tid).is_ok())
        .collect();
    let expected = works.first().expect("tracepoint mode works everywhere");
    let tracer = Tracer::start(&["--json", "-t", &tid, "--attach", "auto", "-v"]);
    let line = tracer.tracing_line();
    let stderr = tracer.stderr();
    let done = tracer.stop();
    assert!(
        line.starts_with(&format!("shmget-trace: tracing ({expected})")),
        "{line}"
    );
    for mode in MODES_CHEAPEST_FIRST
        .iter()
        .take_while(|mode| *mode != expected)
    {
        assert!(
            stderr
                .iter()
                .any(|l| l.starts_with(&format!("shmget-trace: {mode}: not used: "))),
            "-v does not say why {mode} was not used: {stderr:?}"
        );
    }
    assert!(done.json_events().is_empty());
}

/// `shmget-trace --tsv | true`: a reader gone before the first line is a
/// quiet end too, exit 0 with the summary.
fn reader_gone_before_the_header_is_quiet() {
    let mut tracer = Tracer::start_with(&["--tsv", "-t", &gettid().to_string()], Stdout::Pipe);
    drop(tracer.take_stdout());
    // The header went out before the tracing line; the next flush fails.
    native_shmget(unique_key(44), 0, 0);
    let done = tracer.wait();
    done.assert_success();
    assert_eq!(done.summary(), (0, 0));
    assert!(
        done.stderr.iter().all(|l| !l.contains("Broken pipe")),
        "{:?}",
        done.stderr
    );
}

/// A reader of stderr that goes away early (a closed terminal, `2>&1 |
/// head -1`) is no reason to panic: the run ends as usual, exit 0.
fn closed_stderr_is_no_panic() {
    let mut child = Command::new(tracer_bin())
        .args(["--tsv", "-t", &gettid().to_string(), "--duration", "0.3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("shmget-trace: tracing"), "{first}");
    // The pipe is closed now; the summary at exit finds it so.
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
}

/// -u and -n: only calls by that user, only threads of that name.
fn uid_and_name_filters() {
    let key = unique_key(30);
    let step = format!("native:{key}:0:0");
    // Three processes: root unnamed, root named, uid 65534 unnamed; each
    // filter in turn (one tracer at a time, see the key filter's test).
    let three_processes = || {
        workload::run(&[&step]);
        workload::run(&["--comm", "shm-named", &step]);
        workload::run(&["--uid", "65534", &step]);
    };
    let by_uid = Tracer::start(&["--json", "-u", "65534", "-k", &key.to_string()]);
    three_processes();
    let events = by_uid.stop().json_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["uid"], 65534);
    let by_name = Tracer::start(&["--json", "-n", "shm-named", "-k", &key.to_string()]);
    three_processes();
    let events = by_name.stop().json_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["comm"], "shm-named");
    assert_eq!(events[0]["uid"], 0);
}

/// -p and -u take several ids, comma-separated or repeated: only those
/// processes' and users' calls are reported.
fn several_pids_and_uids() {
    let key = unique_key(50);
    let step = format!("native:{key}:0:0");
    let workloads: Vec<Workload> = (0..3).map(|_| Workload::spawn_waiting(&[&step])).collect();
    let pids: Vec<String> = workloads.iter().map(|w| w.pid().to_string()).collect();
    let tracer = Tracer::start(&["--json", "-p", &format!("{},{}", pids[0], pids[2])]);
    native_shmget(key, 0, 0); // this process: not reported
    let results: Vec<serde_json::Value> = workloads.into_iter().map(|w| w.go().remove(0)).collect();
    let events = tracer.stop().json_events();
    let reported: Vec<&serde_json::Value> = events.iter().map(|e| &e["pid"]).collect();
    assert_eq!(
        reported,
        [&results[0]["pid"], &results[2]["pid"]],
        "{events:?}"
    );

    // Three users; two asked for, the option repeated.
    let by_uid = Tracer::start(&[
        "--json",
        "-u",
        "65534",
        "-u",
        "65533",
        "-k",
        &key.to_string(),
    ]);
    for uid in ["0", "65533", "65534"] {
        workload::run(&["--uid", uid, &step]);
    }
    let events = by_uid.stop().json_events();
    let uids: Vec<&serde_json::Value> = events.iter().map(|e| &e["uid"]).collect();
    assert_eq!(uids, [65533, 65534], "{events:?}");
}

/// -n matches a part of the name, as bcc's tools do (also at the end of a
/// full 15-byte name); --name-exact the whole name only.
fn name_matches_a_part_or_exactly() {
    let key = unique_key(51);
    let step = format!("native:{key}:0:0");
    let key_arg = key.to_string();
    let named = || {
        for comm in ["shm-named", "other", "x-shm-named-15b", "shm-name"] {
            workload::run(&["--comm", comm, &step]);
        }
    };
    let comms = |tracer: Tracer| -> Vec<String> {
        let events = tracer.stop().json_events();
        events
            .iter()
            .map(|e| e["comm"].as_str().unwrap().to_string())
            .collect()
    };
    let part = Tracer::start(&["--json", "-n", "named", "-k", &key_arg]);
    named();
    assert_eq!(comms(part), ["shm-named", "x-shm-named-15b"]);
    let end = Tracer::start(&["--json", "-n", "ed-15b", "-k", &key_arg]);
    named();
    assert_eq!(comms(end), ["x-shm-named-15b"]);
    let exact = Tracer::start(&["--json", "--name-exact", "shm-named", "-k", &key_arg]);
    named();
    assert_eq!(comms(exact), ["shm-named"]);
}

/// --errno: only calls that failed with the errors named, by any entry
/// path; successes and other errors are not reported.
fn errno_filter_keeps_only_those_errors() {
    let mut segments = Segments::default();
    let key = unique_key(52);
    let excl = IPC_CREAT | IPC_EXCL | 0o600;
    let tracer = Tracer::start(&[
        "--json",
        "-t",
        &gettid().to_string(),
        "--errno",
        "enoent,EINVAL",
    ]);
    let calls = [
        native_shmget(unique_key(53), 0, 0),
        segments.track(native_shmget(key, 4096, excl)),
        native_shmget(key, 4096, excl),
        native_shmget(key, 8192, 0),
        other_path_shmget(unique_key(53)),
    ];
    let events = tracer.stop().json_events();
    assert!(calls[1] >= 0, "{calls:?}");
    assert_eq!([calls[0], calls[2], calls[3], calls[4]], [-2, -17, -22, -2]);
    let reported: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["call"].as_str().unwrap(), e["errno"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reported,
        [
            ("shmget", "ENOENT"),
            ("shmget", "EINVAL"),
            (OTHER_PATH.1, "ENOENT")
        ]
    );
}

/// The table in 80 and 100 columns (COLUMNS stands for the terminal): no
/// line is wider; in 100 a shmget's row is whole (a failed one's up to
/// its reason, which follows as far as it fits); what is cut ends with
/// the marker; a shmat's address is hex, as strace shows it.
fn table_fits_80_and_100_columns() {
    let mut segments = Segments::default();
    let tid = gettid().to_string();
    for width in [80, 100] {
        let columns = width.to_string();
        let tracer = Tracer::start_with_env(
            &["-t", &tid, "--events", "all"],
            Stdout::Collect,
            &[("COLUMNS", &columns)],
        );
        native_shmget(unique_key(54), 0, 0);
        let id = segments.track(native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600));
        let addr = native_shmat(id, SHM_RDONLY);
        assert_eq!(native_shmdt(addr), 0);
        let done = tracer.stop();
        let lines: Vec<&str> = done.stdout.lines().collect();
        assert_eq!(lines.len(), 5, "{}", done.stdout);
        assert!(lines[0].starts_with("TIME "), "{}", done.stdout);
        for line in &lines {
            // ASCII but the marker, one column wide.
            assert!(line.chars().count() <= width, "{width}: {line:?}");
        }
        let hex = format!("{addr:#x}");
        if width == 100 {
            let created = lines[2];
            assert!(
                created.contains("IPC_CREAT") && !created.ends_with('…'),
                "{created:?}"
            );
            // A failed call's reason follows, cut at the width.
            assert!(lines[1].contains(" ENOENT "), "{:?}", lines[1]);
            assert!(lines[1].contains(" no segment"), "{:?}", lines[1]);
            assert!(lines[2].contains(&format!(" {id} ")), "{:?}", lines[2]);
            assert!(lines[3].contains(&format!(" {hex} ")), "{:?}", lines[3]);
            assert!(
                lines[3].ends_with('…'),
                "the shmat's details: {:?}",
                lines[3]
            );
        } else {
            assert!(lines[1].contains(" ENOENT "), "{:?}", lines[1]);
            assert!(lines[2].ends_with('…'), "{:?}", lines[2]);
        }
    }
}

/// Seconds of the day of `HH:MM:SS` at `at` in an RFC 3339 time or a table
/// cell.
fn seconds_of_day(text: &str, at: usize) -> i64 {
    let field = |i: usize| text[at + i..at + i + 2].parse::<i64>().unwrap();
    field(0) * 3600 + field(3) * 60 + field(6)
}

/// Whether two seconds of the day are at most a few seconds apart.
fn close_in_the_day(a: i64, b: i64) -> bool {
    let apart = (a - b).rem_euclid(86_400);
    apart.min(86_400 - apart) <= 5
}

/// TSV and JSON say UTC by default; -T local follows TZ (a POSIX rule
/// here, which needs no zone files), as the table does by default; -T
/// relative counts seconds from the start.
fn time_is_utc_local_or_relative() {
    let tid = gettid().to_string();
    let kolkata = [("TZ", "XYZ-5:30")];
    let now = || {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        since.as_secs() as i64 % 86_400
    };
    let first_time = |args: &[&str]| {
        let tracer = Tracer::start_with_env(args, Stdout::Collect, &kolkata);
        native_shmget(unique_key(55), 0, 0);
        let at = now();
        let done = tracer.stop();
        let line = done.stdout.lines().nth(1).expect("a row").to_string();
        (
            line.split('\t').next().unwrap().to_string(),
            at,
            done.stdout,
        )
    };
    let (utc, at, _) = first_time(&["--tsv", "-t", &tid]);
    assert!(utc.ends_with('Z') && utc.len() == 30, "{utc}");
    assert!(close_in_the_day(seconds_of_day(&utc, 11), at), "{utc}");
    let (local, at, _) = first_time(&["--tsv", "-t", &tid, "-T", "local"]);
    assert!(local.ends_with("+05:30") && local.len() == 35, "{local}");
    assert!(
        close_in_the_day(seconds_of_day(&local, 11), at + 19_800),
        "{local}"
    );
    let (_, at, table) = first_time(&["-t", &tid]);
    assert!(table.starts_with("TIME "), "{table}");
    let row = table.lines().nth(1).unwrap();
    assert!(
        close_in_the_day(seconds_of_day(row, 0), at + 19_800),
        "{table}"
    );
    let (relative, _, _) = first_time(&["--tsv", "-t", &tid, "-T", "relative"]);
    let seconds: f64 = relative.parse().unwrap_or_else(|_| panic!("{relative}"));
    assert!((0.0..60.0).contains(&seconds), "{relative}");
    assert_eq!(
        relative.split_once('.').map(|(_, ns)| ns.len()),
        Some(9),
        "{relative}"
    );
}

/// --columns for TSV and the table, --no-header, --output and --append: a
/// log of chosen columns, written to a file and added to.
fn columns_header_and_output_file() {
    let dir = std::env::temp_dir().join(format!("shmget-trace-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("shm.tsv");
    let log_arg = log.to_str().unwrap();
    let tid = gettid().to_string();
    let key = unique_key(56);
    let hex_key = format!("{:#010x}", key);
    let columns = [
        "--tsv",
        "-t",
        &tid,
        "-o",
        "pid,errno,key",
        "--output",
        log_arg,
    ];
    let traced = |extra: &[&str]| {
        let tracer = Tracer::start(&[&columns[..], extra].concat());
        native_shmget(key, 0, 0);
        let done = tracer.stop();
        assert_eq!(done.stdout, "", "the events go to the file");
        assert_eq!(done.summary(), (1, 0));
    };
    traced(&[]);
    let row = format!("{}\tENOENT\t{hex_key}\n", std::process::id());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("pid\terrno\tkey\n{row}")
    );
    traced(&["--append", "--no-header"]);
    let contents = std::fs::read_to_string(&log).unwrap();
    traced(&[]); // made anew
    let anew = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(contents, format!("pid\terrno\tkey\n{row}{row}"));
    assert_eq!(anew, format!("pid\terrno\tkey\n{row}"));

    let tracer = Tracer::start(&["-t", &tid, "-o", "errno,key,mode", "--no-header"]);
    native_shmget(key, 0, 0o640);
    let table = tracer.stop().stdout;
    assert_eq!(table, format!("ENOENT {hex_key} 0640\n"));
}

/// -v says in a few lines why each mode was or was not used; libbpf's own
/// log (thousands of lines) is -vv.
fn verbose_and_very_verbose() {
    let tid = gettid().to_string();
    let verbose = Tracer::start(&["--json", "-t", &tid, "-v"]).stop().stderr;
    assert!(verbose.len() <= 8, "{verbose:#?}");
    assert!(
        verbose.iter().all(|l| l.starts_with("shmget-trace: ")),
        "{verbose:#?}"
    );
    assert!(
        verbose.iter().any(|l| l.ends_with(": used")),
        "{verbose:#?}"
    );
    let very = Tracer::start(&["--json", "-t", &tid, "-vv"]).stop().stderr;
    let libbpf = very.iter().filter(|l| l.starts_with("libbpf: ")).count();
    assert!(libbpf > 50, "{libbpf} lines of libbpf's log: {very:#?}");
}

fn main() {
    common::main(&[
        plain(
            "bad_options_give_one_clear_line",
            bad_options_give_one_clear_line,
        ),
        plain("help_and_version_exit_zero", help_and_version_exit_zero),
        plain(
            "help_wraps_to_the_terminal_width",
            help_wraps_to_the_terminal_width,
        ),
        plain(
            "bad_values_list_the_valid_ones_and_the_nearest",
            bad_values_list_the_valid_ones_and_the_nearest,
        ),
        plain(
            "man_page_and_completions_are_current",
            man_page_and_completions_are_current,
        ),
        bpf_per_mode("several_pids_and_uids", several_pids_and_uids),
        bpf_per_mode(
            "name_matches_a_part_or_exactly",
            name_matches_a_part_or_exactly,
        ),
        bpf_per_mode(
            "errno_filter_keeps_only_those_errors",
            errno_filter_keeps_only_those_errors,
        ),
        bpf(
            "table_fits_80_and_100_columns",
            table_fits_80_and_100_columns,
        ),
        bpf(
            "time_is_utc_local_or_relative",
            time_is_utc_local_or_relative,
        ),
        bpf(
            "columns_header_and_output_file",
            columns_header_and_output_file,
        ),
        bpf("verbose_and_very_verbose", verbose_and_very_verbose),
        plain(
            "missing_capabilities_are_named",
            missing_capabilities_are_named,
        ),
        bpf(
            "count_ends_the_trace_by_itself",
            count_ends_the_trace_by_itself,
        ),
        bpf(
            "duration_ends_the_trace_by_itself",
            duration_ends_the_trace_by_itself,
        ),
        bpf("sigterm_stops_like_sigint", sigterm_stops_like_sigint),
        bpf_per_mode(
            "pid_filter_keeps_only_that_process",
            pid_filter_keeps_only_that_process,
        ),
        bpf_per_mode(
            "failed_filter_keeps_only_failures",
            failed_filter_keeps_only_failures,
        ),
        bpf_per_mode(
            "key_filter_keeps_only_that_key",
            key_filter_keeps_only_that_key,
        ),
        bpf("closed_stdout_ends_quietly", closed_stdout_ends_quietly),
        bpf(
            "attach_modes_trace_or_say_why",
            attach_modes_trace_or_say_why,
        ),
        bpf(
            "auto_takes_the_cheapest_mode_that_works",
            auto_takes_the_cheapest_mode_that_works,
        ),
        bpf_per_mode("uid_and_name_filters", uid_and_name_filters),
        bpf("closed_stderr_is_no_panic", closed_stderr_is_no_panic),
        bpf("hangup_quit_and_usr1", hangup_quit_and_usr1),
        bpf(
            "capabilities_are_dropped_once_attached",
            capabilities_are_dropped_once_attached,
        ),
        bpf(
            "reader_gone_before_the_header_is_quiet",
            reader_gone_before_the_header_is_quiet,
        ),
        bpf(
            "full_output_counts_only_what_was_written",
            full_output_counts_only_what_was_written,
        ),
    ])
}
