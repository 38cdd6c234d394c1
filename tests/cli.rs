//! The binary as a user runs it: options, filters, how it stops, and what
//! it says when something is wrong.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::syscalls::*;
use common::*;
use nix::sys::signal::Signal;

fn run_tracer(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TRACER)
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

#[test]
fn bad_options_give_one_clear_line() {
    assert_one_line_error(&["--bogus"], 2, "unexpected argument '--bogus'");
    assert_one_line_error(
        &["--pid", "abc"],
        2,
        "invalid value 'abc' for '--pid <PID>'",
    );
    assert_one_line_error(&["--pid", "0"], 2, "must be a positive number");
    assert_one_line_error(&["--ringbuf-size", "3000"], 2, "power of two");
    assert_one_line_error(&["--ringbuf-size", "16X"], 2, "unit must be K, M or G");
    assert_one_line_error(&["--key", "0xfffffffff"], 2, "32-bit key");
    assert_one_line_error(&["--name", "0123456789abcdef"], 2, "at most 15");
    assert_one_line_error(&["--attach", "uprobe"], 2, "invalid value 'uprobe'");
    assert_one_line_error(&["--tsv", "--json"], 2, "cannot be used with");
    assert_one_line_error(&["--duration", "0"], 2, "positive number of seconds");
    assert_one_line_error(&["--duration=-1"], 2, "positive number of seconds");
    assert_one_line_error(&["--count", "0"], 2, "--count");
}

#[test]
fn help_and_version_exit_zero() {
    let (status, stdout, _) = run_tracer(&["--help"]);
    assert_eq!(status, 0);
    for option in [
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
    assert_eq!(
        stdout.trim(),
        format!("shmget-trace {}", env!("CARGO_PKG_VERSION"))
    );
}

/// With the capabilities dropped from the bounding set, even root cannot
/// load BPF; the message names what is missing.
#[test]
fn missing_capabilities_are_named() {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(setpriv) = setpriv else {
        panic!("setpriv (util-linux) is needed for this test");
    };
    let out = Command::new(setpriv)
        .args([
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            TRACER,
            "--tsv",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("CAP_BPF") && stderr.contains("CAP_PERFMON"),
        "{stderr:?}"
    );
}

#[test]
fn count_ends_the_trace_by_itself() {
    if !bpf_available() {
        return;
    }
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--tsv", "-t", &tid, "--count", "2"]);
    let key = unique_key(10);
    for _ in 0..5 {
        native_shmget(key, 0, 0);
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

#[test]
fn duration_ends_the_trace_by_itself() {
    if !bpf_available() {
        return;
    }
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

#[test]
fn sigterm_stops_like_sigint() {
    if !bpf_available() {
        return;
    }
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid]);
    native_shmget(unique_key(12), 0, 0);
    let done = tracer.signal(Signal::SIGTERM);
    done.assert_success();
    assert_eq!(done.json_events().len(), 1);
    assert_eq!(done.summary(), (1, 0));
}

/// -p: only the given process; the test's own calls are left out.
#[test]
fn pid_filter_keeps_only_that_process() {
    if !bpf_available() {
        return;
    }
    let key = unique_key(13);
    let key_arg = format!("{key}");
    let workload = Workload::spawn_waiting(&[
        &format!("native:{key_arg}:0:0"),
        &format!("ia32-ipc:{key_arg}:0:0"),
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
    assert_eq!(events[1]["call"], "ipc");
}

/// -x: only failed calls.
#[test]
fn failed_filter_keeps_only_failures() {
    if !bpf_available() {
        return;
    }
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
#[test]
fn key_filter_keeps_only_that_key() {
    if !bpf_available() {
        return;
    }
    let tid = gettid().to_string();
    let wanted = unique_key(15);
    let other = unique_key(16);
    let hex = format!("0x{:x}", wanted);
    let by_hex = Tracer::start(&["--json", "-t", &tid, "-k", &hex]);
    let by_decimal = Tracer::start(&["--json", "-t", &tid, "-k", &wanted.to_string()]);
    native_shmget(other, 0, 0);
    native_shmget(wanted, 0, 0);
    ia32_shmget(other, 0, 0);
    ia32_shmget(wanted, 0, 0);
    for done in [by_hex.stop(), by_decimal.stop()] {
        let events = done.json_events();
        assert_eq!(events.len(), 2, "{events:?}");
        for event in &events {
            assert_eq!(event["key"], format!("0x{:08x}", wanted));
        }
    }
}

/// `shmget-trace --tsv | head -3`: when the reader goes, so do we, quietly.
#[test]
fn closed_stdout_ends_quietly() {
    if !bpf_available() {
        return;
    }
    let tid = gettid().to_string();
    let mut tracer = Tracer::start_keeping_stdout(&["--tsv", "-t", &tid]);
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

/// The attach modes this kernel lacks are refused with the reason; the
/// tracepoint mode works everywhere this tool runs.
#[test]
fn attach_modes_say_why_they_cannot_work() {
    if !bpf_available() {
        return;
    }
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--attach", "tracepoint"]);
    native_shmget(unique_key(18), 0, 0);
    ia32_shmget(unique_key(18), 0, 0);
    let done = tracer.stop();
    assert_eq!(done.json_events().len(), 2);
    assert!(done
        .stderr
        .iter()
        .any(|l| l == "shmget-trace: tracing (tracepoint): x86_64 shmget, ia32 shmget, ia32 ipc"));

    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    for mode in ["kprobe", "fentry"] {
        let mut child = Command::new(TRACER)
            .args(["--json", "-t", &tid, "--attach", mode])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            Signal::SIGINT,
        );
        let status = wait_with_timeout(&mut child, Duration::from_secs(60));
        if first.starts_with("shmget-trace: tracing") {
            assert!(first.contains(&format!("({mode})")), "{first}");
            assert!(mode != "kprobe" || kprobes, "kprobe mode without kprobes?");
        } else {
            assert_eq!(status.code(), Some(1), "{first}");
            assert!(
                first.starts_with(&format!("shmget-trace: --attach {mode} is not possible")),
                "{first}"
            );
            if mode == "kprobe" && !kprobes {
                assert!(first.contains("no kprobes"), "{first}");
            }
            if mode == "fentry" {
                assert!(first.contains("fentry"), "{first}");
            }
        }
    }
}

/// -u and -n: only calls by that user, only threads of that name.
#[test]
fn uid_and_name_filters() {
    if !bpf_available() {
        return;
    }
    let key = unique_key(30);
    let by_uid = Tracer::start(&["--json", "-u", "65534", "-k", &key.to_string()]);
    let by_name = Tracer::start(&["--json", "-n", "shm-named", "-k", &key.to_string()]);
    let step = format!("native:{key}:0:0");
    // Three processes: root unnamed, root named, uid 65534 unnamed.
    for prefix in [&[][..], &["--comm", "shm-named"][..]] {
        let out = Command::new(WORKLOAD)
            .args(prefix)
            .arg(&step)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            WORKLOAD,
            &step,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let events = by_uid.stop().json_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["uid"], 65534);
    let events = by_name.stop().json_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["comm"], "shm-named");
    assert_eq!(events[0]["uid"], 0);
}
