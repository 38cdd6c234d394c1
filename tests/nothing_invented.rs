//! Nothing invented: every event the tracer reports is a call that
//! happened. The tracer runs unfiltered, as users run it, beside programs
//! that make no shared-memory call (tests/common/quiet.rs), beside calls
//! that the kernel refused before they ran (seccomp, a ptrace tracer's
//! skip), and with strace as the second opinion on every call a workload
//! made.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Events of these processes, expanded by their `count` (a fold line
/// stands for that many calls).
fn calls_of(events: &[Value], pid: u64) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["pid"].as_u64() == Some(pid))
        .flat_map(|e| std::iter::repeat_n(e.clone(), e["count"].as_u64().unwrap_or(1) as usize))
        .collect()
}

/// The unfiltered tracer, every call traced, as JSON.
fn trace_everything() -> Tracer {
    Tracer::start(&["--json", "--events", "all"])
}

/// Programs that make no shared-memory call, in a cgroup of their own,
/// while the tracer traces the whole host: not one event may come from
/// that cgroup, nor from the tracer itself. A real call made beside them,
/// from another process, is reported, so that the tracer is seen to work.
fn programs_that_make_no_shared_memory_call_are_never_reported() {
    let cgroup = TempCgroup::new(&format!("shmget-trace-quiet-{}", std::process::id()));
    let missing = unique_key(1);
    let tracer = trace_everything();
    let quiet = Workload::spawn_waiting(&["quiet:all"]);
    cgroup.add(quiet.pid());
    quiet.go();
    let control = workload::run(&[&format!("native:{missing}:0:0")]);
    let tracer_pid = tracer.pid() as u64;
    let done = tracer.stop();
    done.assert_success();
    let events = done.json_events();
    // By the cgroup's id (its inode), which every event carries, and its path.
    let cgroup_id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cgroup.0).unwrap());
    let invented: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["cgroup"] == cgroup_id
                || e["cgroup_path"] == cgroup.relative().as_str()
                || e["pid"] == tracer_pid
        })
        .collect();
    eprintln!(
        "note: {} events from programs that made no shared-memory call, {} events in all",
        invented.len(),
        events.len()
    );
    assert!(
        invented.is_empty(),
        "{} invented events: {invented:#?}",
        invented.len()
    );
    let control_pid = control[0]["pid"].as_u64().unwrap();
    let reported = calls_of(&events, control_pid);
    assert_eq!(reported.len(), 1, "the control call: {reported:?}");
    assert_eq!(reported[0]["key"], format!("{:#010x}", missing as u32));
    assert_eq!(reported[0]["errno"], "ENOENT");
}

/// Why strace cannot be the second opinion here, if it cannot.
fn strace_missing() -> Option<String> {
    match Command::new("strace").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("no strace on PATH (apt-get install strace)".into()),
    }
}

/// One call as strace printed it: `1234 shmget(0x5711, 0, 0) = -1 ENOENT (...)`,
/// with `-e raw=all` (every argument in hex).
#[derive(Debug)]
struct StraceCall {
    tid: u64,
    name: String,
    args: Vec<u64>,
    /// The result, or None for a failure ...
    ret: Option<u64>,
    /// ... with this errno.
    errno: Option<String>,
    injected: bool,
}

fn hex(text: &str) -> u64 {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(digits) => u64::from_str_radix(digits, 16),
        None => text.parse(),
    }
    .unwrap_or_else(|e| panic!("strace number {text:?}: {e}"))
}

fn parse_strace(text: &str) -> Vec<StraceCall> {
    text.lines()
        .filter(|l| !l.contains("+++") && !l.contains("---"))
        .map(|line| {
            // The tid first, padded to a width when it is short.
            let (tid, rest) = line
                .trim_start()
                .split_once(' ')
                .expect("strace -f: tid first");
            let (name, rest) = rest.trim_start().split_once('(').expect("a call");
            // strace pads the call to a column before `= `.
            let (args, result) = rest.split_once(')').expect("its arguments");
            let result = result.trim_start().strip_prefix("= ").expect("= result");
            let mut words = result.split_whitespace();
            let value = words.next().unwrap();
            let (ret, errno) = if value == "-1" {
                (None, words.next().map(String::from))
            } else {
                (Some(hex(value)), None)
            };
            StraceCall {
                tid: tid.parse().expect("tid"),
                name: name.to_string(),
                args: args.split(", ").map(hex).collect(),
                ret,
                errno,
                injected: line.ends_with("(INJECTED)"),
            }
        })
        .collect()
}

/// shmctl's command as the tracer names it (`IPC_RMID`, `IPC_STAT|IPC_64`).
fn cmd_name(cmd: u64) -> String {
    let base = match cmd & 0xff {
        0 => "IPC_RMID",
        1 => "IPC_SET",
        2 => "IPC_STAT",
        3 => "IPC_INFO",
        11 => "SHM_LOCK",
        12 => "SHM_UNLOCK",
        13 => "SHM_STAT",
        14 => "SHM_INFO",
        n => panic!("a command this test does not make: {n}"),
    };
    if cmd & 0x100 != 0 {
        format!("{base}|IPC_64")
    } else {
        base.to_string()
    }
}

/// How an event differs from the call strace saw (empty: not at all).
fn differences(event: &Value, call: &StraceCall) -> Vec<String> {
    let mut wrong = vec![];
    let mut check = |field: &str, want: Value| {
        if event[field] != want {
            wrong.push(format!("{field}: {} (strace: {want})", event[field]));
        }
    };
    check("tid", call.tid.into());
    check("event", call.name.as_str().into());
    let a = &call.args;
    match call.name.as_str() {
        "shmget" => {
            check("key", format!("{:#010x}", a[0] as u32).into());
            check("size", a[1].into());
            check("shmflg", format!("{:#x}", a[2] as u32).into());
        }
        "shmat" => {
            check("shmid", a[0].into());
            check("addr", format!("{:#x}", a[1]).into());
            check("shmflg", format!("{:#x}", a[2] as u32).into());
        }
        "shmdt" => check("addr", format!("{:#x}", a[0]).into()),
        "shmctl" => {
            check("shmid", a[0].into());
            check("cmd", cmd_name(a[1]).into());
        }
        other => check(
            "event",
            format!("(a call this test does not make: {other})").into(),
        ),
    }
    match (&call.ret, &call.errno) {
        (Some(ret), _) => {
            check("ret", (*ret as i64).into());
            check("errno", Value::Null);
        }
        (None, errno) => check("errno", errno.as_deref().unwrap_or("?").into()),
    }
    wrong
}

/// A workload run under `strace -f` while the tracer traces the host:
/// (what strace printed, the workload's own result lines).
fn under_strace(strace_args: &[&str], steps: &[&str]) -> (Vec<StraceCall>, Vec<Value>) {
    let dir = TempDir::new("shmget-trace-strace");
    let log = dir.0.join("strace.txt");
    let me = std::env::current_exe().expect("own executable");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "raw=all", "-e", "signal=none", "-o"])
        .arg(&log)
        .args(["-e", "trace=shmget,shmat,shmdt,shmctl,ipc"])
        .args(strace_args)
        .arg(&me)
        .args(steps)
        .env("SHMGET_TRACE_TEST_WORKLOAD", "1")
        .output()
        .expect("run strace");
    assert!(out.status.success(), "strace {steps:?}: {out:?}");
    let results = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("workload JSON"))
        .collect();
    let text = std::fs::read_to_string(&log).expect("strace's log");
    (parse_strace(&text), results)
}

/// Every shared-memory call strace saw is reported once, with strace's
/// tid, call, arguments and result; nothing else is reported from that
/// process.
fn every_call_strace_sees_is_reported_once() {
    let missing = unique_key(2);
    let mut steps = vec![
        format!("native:{missing}:0:0"),
        "native:0:4096:0o1600".into(),
        "shmat:last:0".into(),
        "shmat:last:0o10000".into(), // SHM_RDONLY
        "shmctl:last:2".into(),      // IPC_STAT without a buffer: EFAULT
        "native:0:4096:0o1600".into(),
        "native:0:0:0o1600".into(), // size 0: EINVAL
        "quiet:signals".into(),     // handlers' returns between the calls
    ];
    if cfg!(target_arch = "x86_64") {
        steps.extend([
            format!("ia32-shmget:{}:0:0", unique_key(3)),
            format!("ia32-ipc:{}:0:0", unique_key(4)),
            "ia32-ipc:0:8192:0o1600".into(),
        ]);
    }
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let tracer = trace_everything();
    let (seen, results) = under_strace(&[], &steps);
    let done = tracer.stop();
    done.assert_success();
    let pid = results[0]["pid"].as_u64().unwrap();
    let reported = calls_of(&done.json_events(), pid);
    // The segments made are removed at exit: IPC_RMID each, seen by both.
    assert!(seen.len() > steps.len(), "strace saw {seen:#?}");
    assert_eq!(
        reported.len(),
        seen.len(),
        "one event per call strace saw: strace {seen:#?}, tracer {reported:#?}; stderr {:?}",
        done.stderr
    );
    for (event, call) in reported.iter().zip(&seen) {
        let wrong = differences(event, call);
        assert!(wrong.is_empty(), "{event} is not {call:?}: {wrong:?}");
        assert_eq!(event["pid"], pid);
    }
}

/// Calls a ptrace tracer answered itself (`strace -e inject=...:error=EPERM`,
/// the first shmget and the first ia32 ipc()) never ran: they are reported
/// in no mode. The calls after them ran, and are.
fn calls_strace_answered_itself_are_not_reported() {
    let keys = [unique_key(5), unique_key(6), unique_key(7), unique_key(8)];
    let mut steps = vec![
        format!("native:{}:0:0", keys[0]),
        "quiet:signals".into(),
        format!("native:{}:0:0", keys[1]),
    ];
    if cfg!(target_arch = "x86_64") {
        steps.extend([
            format!("ia32-ipc:{}:0:0", keys[2]),
            format!("ia32-ipc:{}:0:0", keys[3]),
        ]);
    }
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let tracer = trace_everything();
    let (seen, results) = under_strace(
        &[
            "-e",
            "inject=shmget:error=EPERM:when=1",
            "-e",
            "inject=ipc:error=EPERM:when=1",
        ],
        &steps,
    );
    let done = tracer.stop();
    done.assert_success();
    let rets: Vec<i64> = results.iter().map(|r| r["ret"].as_i64().unwrap()).collect();
    let injected = seen.iter().filter(|c| c.injected).count();
    assert_eq!(injected, results.len() / 2, "strace injected: {seen:#?}");
    for (i, ret) in rets.iter().enumerate() {
        assert_eq!(
            *ret,
            if i % 2 == 0 { -1 } else { -2 },
            "step {i}: {results:?}"
        );
    }
    let pid = results[0]["pid"].as_u64().unwrap();
    let reported = calls_of(&done.json_events(), pid);
    let ran: Vec<&StraceCall> = seen.iter().filter(|c| !c.injected).collect();
    assert_eq!(
        reported.len(),
        ran.len(),
        "only the calls that ran: {reported:#?}"
    );
    for (event, call) in reported.iter().zip(ran) {
        let wrong = differences(event, call);
        assert!(wrong.is_empty(), "{event} is not {call:?}: {wrong:?}");
    }
}

/// shmget calls that a seccomp filter failed with EPERM (the native one,
/// and on x86_64 the ia32 shmget and ipc()) ran no shared-memory code:
/// reported in no mode. The call made before the filter is.
fn calls_seccomp_refused_are_not_reported() {
    let keys = [
        unique_key(9),
        unique_key(10),
        unique_key(11),
        unique_key(12),
    ];
    let mut steps = vec![
        format!("native:{}:0:0", keys[0]),
        "seccomp-refuses-shmget".into(),
        "quiet:signals".into(),
        format!("native:{}:0:0", keys[1]),
    ];
    if cfg!(target_arch = "x86_64") {
        steps.extend([
            format!("ia32-shmget:{}:0:0", keys[2]),
            format!("ia32-ipc:{}:0:0", keys[3]),
        ]);
    }
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let tracer = trace_everything();
    let results = workload::run(&steps);
    let done = tracer.stop();
    done.assert_success();
    let rets: Vec<i64> = results.iter().map(|r| r["ret"].as_i64().unwrap()).collect();
    assert_eq!(rets[0], -2, "before the filter: ENOENT");
    assert!(
        rets[1..].iter().all(|r| *r == -1),
        "the filter's EPERM: {rets:?}"
    );
    let pid = results[0]["pid"].as_u64().unwrap();
    let reported = calls_of(&done.json_events(), pid);
    assert_eq!(
        reported.len(),
        1,
        "only the call before the filter: {reported:#?}"
    );
    assert_eq!(reported[0]["key"], format!("{:#010x}", keys[0] as u32));
    assert_eq!(reported[0]["errno"], "ENOENT");
}

fn main() {
    common::main(&[
        bpf_per_mode(
            "programs_that_make_no_shared_memory_call_are_never_reported",
            programs_that_make_no_shared_memory_call_are_never_reported,
        ),
        bpf_per_mode(
            "every_call_strace_sees_is_reported_once",
            every_call_strace_sees_is_reported_once,
        )
        .unless_missing(strace_missing),
        bpf_per_mode(
            "calls_strace_answered_itself_are_not_reported",
            calls_strace_answered_itself_are_not_reported,
        )
        .unless_missing(strace_missing),
        bpf_per_mode(
            "calls_seccomp_refused_are_not_reported",
            calls_seccomp_refused_are_not_reported,
        ),
    ])
}
