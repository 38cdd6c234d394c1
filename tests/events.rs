//! The tracer loaded into this kernel reports the exact calls this test
//! makes, by each entry path: x86_64 shmget, i386 shmget and i386 ipc() on
//! x86_64; arm64 shmget and AArch32 callers' calls on arm64.

mod common;

use common::syscalls::*;
use common::*;

fn trace_this_thread(format: &str) -> Tracer {
    let tid = gettid().to_string();
    Tracer::start(&[format, "-t", &tid])
}

fn native_shmget_calls_are_reported_field_for_field() {
    let mut segments = Segments::default();
    let missing = unique_key(1);
    let exclusive = unique_key(2);
    let huge = IPC_CREAT | SHM_HUGETLB | SHM_HUGE_2MB | 0o600;
    let tracer = trace_this_thread("--json");

    let x64 = expect::EntryPath::X64;
    let excl = IPC_CREAT | IPC_EXCL | 0o640;
    let calls = [
        Call::shmget(x64, missing, 0, 0, "-"),
        Call::shmget(x64, IPC_PRIVATE, 4096, IPC_CREAT | 0o600, "IPC_CREAT"),
        Call::shmget(x64, exclusive, 8192, excl, "IPC_CREAT|IPC_EXCL"),
        Call::shmget(x64, exclusive, 8192, excl, "IPC_CREAT|IPC_EXCL"),
        Call::shmget(
            x64,
            IPC_PRIVATE,
            2 << 20,
            huge,
            "IPC_CREAT|SHM_HUGETLB|SHM_HUGE_2MB",
        ),
    ];
    for call in &calls {
        segments.track(call.ret);
    }
    assert_eq!(calls[0].ret, -2, "missing key gives ENOENT");
    assert!(calls[1].ret >= 0, "IPC_PRIVATE|IPC_CREAT gives an id");
    assert!(calls[2].ret >= 0, "first IPC_EXCL create gives an id");
    assert_eq!(calls[3].ret, -17, "second IPC_EXCL create gives EEXIST");
    tracer.stop().assert_reports(&calls);
}

fn ia32_shmget_and_ipc_calls_are_reported_field_for_field() {
    let mut segments = Segments::default();
    let missing = unique_key(3);
    let tracer = trace_this_thread("--json");

    let (ia32, ipc) = (expect::EntryPath::Ia32, expect::EntryPath::Ia32Ipc);
    let create = IPC_CREAT | 0o600;
    let calls = [
        Call::shmget(ia32, missing, 0, 0, "-"),
        Call::shmget(ia32, IPC_PRIVATE, 4096, create, "IPC_CREAT"),
        Call::shmget(ipc, missing, 0, 0, "-"),
        Call::shmget(ipc, IPC_PRIVATE, 12288, create, "IPC_CREAT"),
    ];
    for call in &calls {
        segments.track(call.ret);
    }
    // Neither of these is a shmget: ipc(SHMCTL), and x86_64 syscall 117,
    // which is setresuid (here a no-op), not ipc.
    assert_eq!(ia32_ipc(IPCCALL_SHMCTL, u32::MAX, IPC_STAT as u32, 0), -22);
    // SAFETY: setresuid(-1, -1, -1) changes nothing.
    assert_eq!(unsafe { nix::libc::syscall(117, -1, -1, -1) }, 0);
    let done = tracer.stop();

    assert_eq!(calls[0].ret, -2);
    assert!(calls[1].ret >= 0);
    assert_eq!(calls[2].ret, -2);
    assert!(calls[3].ret >= 0);
    done.assert_reports(&calls);
}

/// A process chooses its own name: tabs, newlines and terminal escapes in
/// it must not break a line or reach the terminal raw, in any format.
fn hostile_comm_stays_on_one_line_in_every_format() {
    let escaped = "a\\x09b\\x0ac\\x1b[31m\\\\";
    let key = unique_key(4);
    // One tracer at a time (some kernels refuse a second fexit program on
    // a function), each sees the same call under the hostile name.
    let traced = |format: &str| {
        let tracer = trace_this_thread(format);
        set_thread_comm(b"a\tb\nc\x1b[31m\\");
        let ret = native_shmget(key, 0, 0);
        set_thread_comm(b"hostile_comm");
        assert_eq!(ret, -2);
        tracer.stop()
    };
    // The wide table: in the default one the name is cut to its column.
    let (tsv, json, table) = (traced("--tsv"), traced("--json"), traced("--wide"));

    // The tracer's stderr with a missing event: whether its summary saw
    // the call (then lost in output) or not (never reported by the hook).
    let lines: Vec<&str> = tsv.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "header and one row: {lines:?}; {:?}",
        tsv.stderr
    );
    assert_eq!(lines[0], expect::FIELDS.join("\t"));
    let fields: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(fields.len(), expect::FIELDS.len(), "{fields:?}");
    assert_eq!(fields[6], escaped);
    assert_eq!(fields[9], format!("0x{:08x}", key));

    let events = json.json_events();
    assert_eq!(events.len(), 1, "{:?}", json.stderr);
    assert_eq!(events[0]["comm"], escaped);

    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "header and one row: {lines:?}; {:?}",
        table.stderr
    );
    assert!(lines[0].starts_with("TIME "));
    assert!(lines[1].contains(escaped), "{:?}", lines[1]);
    assert!(lines[1].contains("ENOENT"), "{:?}", lines[1]);
    assert!(
        !table
            .stdout
            .bytes()
            .any(|b| (b < 0x20 && b != b'\n') || b == 0x7f),
        "no raw control byte in the table: {:?}",
        table.stdout
    );
}

/// Events that do not fit in the ring buffer are counted in the kernel and
/// reported, to the call: delivered + lost == calls. Each delivered event
/// is whole: records of 168 bytes (ENOENT) and 264 (EINVAL, a failure with
/// its details) in a 4 KiB ring keep wrapping around its end.
fn lost_events_are_counted_exactly() {
    const CALLS: u64 = 100_000;
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--ringbuf-size", "4K"]);
    let key = unique_key(5);
    // Alternating, so that no call repeats the last; but a call dropped
    // over the process's share does not end the fold before it, which the
    // call after it may join: a line may stand for several calls.
    for call in 0..CALLS {
        if call % 2 == 0 {
            native_shmget(key, 0, 0);
        } else {
            native_shmget(key, u64::MAX, IPC_CREAT);
        }
    }
    let done = tracer.stop();
    done.assert_success();
    let events = done.json_events();
    let delivered: u64 = events.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    let expected_key = format!("0x{:08x}", key as u32);
    for event in &events {
        assert_eq!(event["tid"].to_string(), tid, "{event}");
        assert_eq!(event["key"], expected_key.as_str(), "{event}");
        let reason = (event["errno"].as_str(), event["reason_code"].as_str());
        assert!(
            [
                (Some("ENOENT"), Some("no_key")),
                (Some("EINVAL"), Some("shmmax"))
            ]
            .contains(&reason),
            "{event}"
        );
    }
    assert!(
        events.iter().any(|e| e["errno"] == "EINVAL"),
        "failures with details were delivered: {events:?}"
    );
    let (reported, lost) = done.summary();
    assert_eq!(reported, delivered);
    assert_eq!(
        delivered + lost,
        CALLS,
        "delivered {delivered} + lost {lost}"
    );
    assert!(lost > 0, "a 4K ring buffer cannot hold a burst of {CALLS}");
    // The reasons, on the line before the summary: here, the ring buffer
    // full, or (which comes first) the process over its share of it.
    let reasons = &done.stderr[done.stderr.len() - 2];
    let counts: Vec<(u64, &str)> = reasons
        .strip_prefix("shmget-trace: lost: ")
        .map(|r| {
            r.split(", ")
                .filter_map(|r| r.split_once(' '))
                .filter_map(|(n, why)| Some((n.parse().ok()?, why)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        counts.iter().map(|(n, _)| n).sum::<u64>(),
        lost,
        "the line before the summary gives the reasons: {:?}",
        done.stderr
    );
    assert!(
        counts
            .iter()
            .all(|(_, why)| *why == "ring buffer full" || why.starts_with("over the process")),
        "{:?}",
        done.stderr
    );
    assert_losers(&done, &[(std::process::id(), lost)]);
}

/// The `lost by process` line names exactly these processes, with these
/// counts.
fn assert_losers(done: &Finished, wanted: &[(u32, u64)]) {
    let line = done
        .stderr
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("shmget-trace: lost by process: "))
        .unwrap_or_else(|| panic!("no losses by process: {:?}", done.stderr));
    let losers: Vec<(u32, u64)> = line
        .split(", ")
        .map(|l| {
            let (pid, rest) = l.split_once(" (").unwrap();
            let (_, count) = rest.rsplit_once(") ").unwrap();
            (pid.parse().unwrap(), count.parse().unwrap())
        })
        .collect();
    assert_eq!(losers, wanted, "{line}");
}

/// The calls (sum of `count`) of the events of process `pid`.
fn calls_of(events: &[serde_json::Value], pid: u32) -> u64 {
    events
        .iter()
        .filter(|e| e["pid"] == pid)
        .map(|e| e["count"].as_u64().expect("a count"))
        .sum()
}

/// A thread repeating one call at full speed into a small ring buffer: a
/// few lines, each saying how many calls it stands for, with the time of
/// its first and last; those counts and the losses are the calls made,
/// exactly.
fn identical_flood_folds_into_counted_lines() {
    const CALLS: u64 = 300_000;
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--ringbuf-size", "4K"]);
    let key = unique_key(6);
    let started = std::time::Instant::now();
    for i in 0..CALLS {
        native_shmget(key, 0, 0);
        // A run longer than the fold window, wherever the machine's speed.
        if i == CALLS / 2 {
            let elapsed = started.elapsed();
            std::thread::sleep(std::time::Duration::from_millis(600).saturating_sub(elapsed));
        }
    }
    let done = tracer.stop();
    let events = done.json_events();
    let (reported, lost) = done.summary();
    let calls: u64 = events.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(reported, calls, "the summary counts calls");
    assert_eq!(calls + lost, CALLS, "{} lines, {lost} lost", events.len());
    assert!(events.len() >= 2 && events.len() < 100, "{events:?}");
    assert_eq!(
        events[0]["count"], 1,
        "the first call at once: {}",
        events[0]
    );
    for event in &events {
        assert_eq!(event["key"], format!("0x{:08x}", key as u32), "{event}");
        assert_eq!(event["errno"], "ENOENT", "{event}");
        let count = event["count"].as_u64().unwrap();
        match event["last_time"].as_str() {
            Some(last) => assert!(
                count > 1 && last >= event["time"].as_str().unwrap(),
                "{event}"
            ),
            None => assert_eq!(count, 1, "{event}"),
        }
    }
}

/// Identical calls further apart than the fold window are lines of their
/// own; a fold still pending when the tracer stops is written.
fn identical_calls_apart_stay_lines_and_pending_folds_are_written() {
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--tsv", "-t", &tid]);
    let key = unique_key(7);
    native_shmget(key, 0, 0);
    std::thread::sleep(std::time::Duration::from_millis(700));
    for _ in 0..10 {
        native_shmget(key, 0, 0);
    }
    let done = tracer.stop();
    let rows: Vec<Vec<&str>> = done
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let column = |name| expect::FIELDS.iter().position(|f| *f == name).unwrap();
    let counts: Vec<&str> = rows.iter().map(|r| r[column("count")]).collect();
    assert_eq!(counts, ["1", "1", "9"], "{}", done.stdout);
    assert_eq!(rows[1][column("last_time")], "-");
    assert!(
        rows[2][column("last_time")] >= rows[2][column("time")],
        "{:?}",
        rows[2]
    );
    assert_eq!(done.summary(), (11, 0));
}

/// A failure repeated folds as any call does: its first line carries the
/// reason read at that call, and the fold lines after it show the same
/// reason; every call is counted.
fn repeated_failures_fold_with_their_reason() {
    const CALLS: u64 = 10;
    let tracer = trace_this_thread("--json");
    let key = unique_key(9);
    for _ in 0..CALLS {
        // Larger than any shmmax: EINVAL, reason shmmax.
        native_shmget(key, u64::MAX, IPC_CREAT);
    }
    let done = tracer.stop();
    let events = done.json_events();
    assert_eq!(done.summary(), (CALLS, 0), "{events:?}");
    assert_eq!(events[0]["count"], 1, "the first call at once: {events:?}");
    assert!(
        events.iter().any(|e| e["count"].as_u64() > Some(1)),
        "the repeats fold: {events:?}"
    );
    let calls: u64 = events.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(calls, CALLS, "{events:?}");
    for event in &events {
        assert_eq!(event["errno"], "EINVAL", "{event}");
        assert_eq!(event["reason_code"], "shmmax", "{event}");
        assert_eq!(event["reason"], events[0]["reason"], "{event}");
    }
}

/// One process floods with calls that all differ while another makes
/// 1,000 calls: every one of those is delivered, the flood is accounted
/// for exactly (its calls in lines and lost), and the losses name it.
fn distinct_flood_keeps_other_processes_calls() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    const BYSTANDER: u64 = 1000;
    let key = unique_key(8);
    let tracer = Tracer::start(&["--json", "-k", &key.to_string(), "--ringbuf-size", "2M"]);
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, made) = (stop.clone(), made.clone());
        std::thread::spawn(move || {
            let mut size = 0;
            while !stop.load(Ordering::Relaxed) {
                native_shmget(key, size, 0);
                size += 1;
                made.store(size, Ordering::Relaxed);
            }
        })
    };
    let steps: Vec<String> = (0..BYSTANDER)
        .map(|s| format!("native:{key}:{s}:0"))
        .collect();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let bystander = Workload::spawn_waiting(&steps);
    let bystander_pid = bystander.pid();
    // The reader stopped, as slow as a reader can be: the flood fills half
    // the ring buffer (12,000 records of 2 MiB) and its share of the rest,
    // and loses the rest of its calls; the other process must lose none.
    // (A reader left running may keep up with a flood for a long time in
    // an emulated VM.)
    let tracer_pid = Pid::from_raw(tracer.pid() as i32);
    kill(tracer_pid, Signal::SIGSTOP).expect("stop the tracer");
    while made.load(Ordering::Relaxed) < 30_000 {
        std::thread::yield_now();
    }
    let results = bystander.go();
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    kill(tracer_pid, Signal::SIGCONT).expect("continue the tracer");
    let done = tracer.stop();
    assert_eq!(results.len() as u64, BYSTANDER);
    let events = done.json_events();
    let (reported, lost) = done.summary();
    let flood_calls = made.load(Ordering::Relaxed);
    assert_eq!(
        calls_of(&events, bystander_pid),
        BYSTANDER,
        "every call of the other process: {:?}",
        &done.stderr
    );
    assert_eq!(
        reported + lost,
        flood_calls + BYSTANDER,
        "{:?}",
        done.stderr
    );
    assert_eq!(calls_of(&events, std::process::id()) + lost, flood_calls);
    assert!(
        lost > 0,
        "the flood lost nothing; no loss to attribute: {:?}",
        done.stderr
    );
    assert_losers(&done, &[(std::process::id(), lost)]);
}

/// A process moved into a cgroup of its own: `--cgroup` keeps only its
/// calls (given either way a user would write the path), and its events
/// name that cgroup by id and by path.
fn cgroup_filter_and_path() {
    use std::os::unix::fs::MetadataExt;
    let cgroup = TempCgroup::new(&format!("shmget-trace-test-{}", std::process::id()));
    let key = unique_key(20);
    let relative = cgroup.relative();
    let full = cgroup.0.display().to_string();
    let id = std::fs::metadata(&cgroup.0).unwrap().ino();
    // One tracer at a time (some kernels refuse a second fexit program on
    // a function), each with its own workload in the cgroup.
    for path in [&relative, &full] {
        let workload = Workload::spawn_waiting(&[&format!("native:{key}:0:0")]);
        cgroup.add(workload.pid());
        let tracer = Tracer::start(&["--json", "--cgroup", path]);
        native_shmget(key, 0, 0); // this process is outside: not reported
        let results = workload.go();
        let events = tracer.stop().json_events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["pid"], results[0]["pid"]);
        assert_eq!(events[0]["ret"], results[0]["ret"]);
        assert_eq!(events[0]["cgroup"], id);
        assert_eq!(events[0]["cgroup_path"], relative);
    }
}

/// cgroup2 as a tracer in a mount namespace of its own finds it: mounted
/// from a subtree (a bind mount of one cgroup, as containers get), paths
/// are still from the cgroup2 root and `--cgroup` takes the mount's top;
/// with none mounted, one line says so and no path is shown.
fn cgroup2_mounted_from_a_subtree_or_not_at_all() {
    use std::os::unix::fs::MetadataExt;
    let cgroup = TempCgroup::new(&format!("shmget-trace-sub-{}", std::process::id()));
    let relative = cgroup.relative();
    let id = std::fs::metadata(&cgroup.0).unwrap().ino();
    let view = TempDir::new("shmget-trace-view");
    let view_arg = view.0.display().to_string();
    // In a private mount namespace (gone with the tracer): the subtree
    // mounted at $2 when $1 names one, then every other cgroup2 unmounted.
    let script = r#"set -e; subtree=$1; view=$2; shift 2
        if [ -n "$subtree" ]; then mount --bind "$subtree" "$view"; fi
        for m in $(awk '/ - cgroup2 / {print $5}' /proc/self/mountinfo); do
            [ "$m" = "$view" ] || umount -l "$m"
        done
        exec "$@""#;
    let key = unique_key(24);
    let key_arg = key.to_string();
    let subtree = cgroup.0.display().to_string();
    for (subtree, filter) in [(subtree.as_str(), true), ("", false)] {
        let wrapper = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            subtree,
            &view_arg,
        ];
        let mut args = vec!["--json", "-k", &key_arg];
        if filter {
            args.extend(["--cgroup", &view_arg]);
        }
        let workload = Workload::spawn_waiting(&[&format!("native:{key}:0:0")]);
        cgroup.add(workload.pid());
        let tracer = Tracer::start_wrapped(&wrapper, &args);
        native_shmget(key, 0, 0); // outside the cgroup: filtered out, or reported
        let results = workload.go();
        let done = tracer.stop();
        let events = done.json_events();
        let from_workload: Vec<_> = events
            .iter()
            .filter(|e| e["pid"] == results[0]["pid"])
            .collect();
        assert_eq!(from_workload.len(), 1, "{events:?}");
        assert_eq!(from_workload[0]["cgroup"], id);
        if filter {
            assert_eq!(events.len(), 1, "only the cgroup's call: {events:?}");
            assert_eq!(from_workload[0]["cgroup_path"], relative.as_str());
        } else {
            assert_eq!(events.len(), 2, "{events:?}");
            assert!(
                events.iter().all(|e| e.get("cgroup_path").is_none()),
                "{events:?}"
            );
            let notes: Vec<_> = done
                .stderr
                .iter()
                .filter(|l| l.contains("cgroup2"))
                .collect();
            assert_eq!(
                notes,
                ["shmget-trace: no cgroup2 file system is mounted: no cgroup paths or containers are shown"],
                "{:?}",
                done.stderr
            );
        }
    }
}

/// Cgroups made a moment apart, as containers start: every call from each
/// names its cgroup's path at once, and TSV and JSON say the same.
fn new_cgroups_are_named_at_once_in_every_format() {
    const CGROUPS: usize = 6;
    const CALLS: usize = 3;
    let key = unique_key(23);
    let key_arg = key.to_string();
    let tsv = Tracer::start(&["--tsv", "-k", &key_arg]);
    let json = Tracer::start(&["--json", "-k", &key_arg]);
    // Three different calls: identical ones in quick succession fold.
    let steps: Vec<String> = (0..CALLS)
        .map(|size| format!("native:{key}:{size}:0"))
        .collect();
    let mut made = vec![];
    for i in 0..CGROUPS {
        let cgroup = TempCgroup::new(&format!("shmget-trace-new-{}-{i}", std::process::id()));
        let workload = Workload::spawn_waiting(&[&steps[0], &steps[1], &steps[2]]);
        let pid = workload.pid();
        cgroup.add(pid);
        workload.go();
        made.push((pid, cgroup));
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    let (tsv, json) = (tsv.stop(), json.stop());
    let events = json.json_events();
    let rows: Vec<Vec<&str>> = tsv
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(events.len(), CGROUPS * CALLS, "{events:?}");
    assert_eq!(rows.len(), CGROUPS * CALLS, "{}", tsv.stdout);
    let column = |name| expect::FIELDS.iter().position(|f| *f == name).unwrap();
    for (event, row) in events.iter().zip(&rows) {
        let (_, cgroup) = made
            .iter()
            .find(|(pid, _)| event["pid"] == *pid)
            .unwrap_or_else(|| panic!("an event of no workload: {event}"));
        assert_eq!(event["cgroup_path"], cgroup.relative(), "{event}");
        assert_eq!(row[column("pid")], event["pid"].to_string());
        assert_eq!(row[column("cgroup_path")], cgroup.relative(), "{row:?}");
        assert_eq!(
            row[column("cgroup")],
            event["cgroup"].to_string(),
            "{row:?}"
        );
    }
}

/// A user with a delegated cgroup subtree (every systemd user session has
/// one) can name directories in it like containers and services: such a
/// name is shown with whose subtree it is in.
fn forged_container_names_say_whose_subtree() {
    const ID: &str = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";
    let key = unique_key(24);
    let tracer = Tracer::start(&["--json", "-k", &key.to_string()]);
    let user = TempCgroup::new(&format!("shmget-trace-user-{}", std::process::id()));
    std::os::unix::fs::chown(&user.0, Some(65534), Some(65534)).unwrap();
    let forged = [format!("docker-{ID}.scope"), "sshd.service".to_string()];
    let mut inner = vec![];
    for name in &forged {
        let cgroup = TempCgroup(user.0.join(name));
        std::fs::create_dir(&cgroup.0).unwrap();
        std::os::unix::fs::chown(&cgroup.0, Some(65534), Some(65534)).unwrap();
        let workload = Workload::spawn_waiting(&[&format!("native:{key}:0:0")]);
        cgroup.add(workload.pid());
        workload.go();
        inner.push(cgroup);
    }
    let events = tracer.stop().json_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["container"], "docker:4f3c2b1a0e9d (uid 65534)");
    assert_eq!(events[1]["container"], "sshd.service (uid 65534)");
    assert_eq!(
        events[1]["cgroup_path"],
        format!("{}/sshd.service", user.relative())
    );
    drop(inner);
}

/// `--cgroup` given wrong: each way gets one clear line that says where
/// cgroup2 is, the user's text escaped.
fn cgroup_arguments_get_clear_errors() {
    let run = |path: &str| {
        // A tracer that takes a bad path for a good one would trace on:
        // it must end by itself, at once.
        let mut child = std::process::Command::new(tracer_bin())
            .args(["--cgroup", path])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(30));
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(1), "{path:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{path:?}: {stderr}");
        stderr
    };
    assert!(run("").contains("an empty path names no cgroup"));
    let mount = expect::cgroup2_mount().unwrap();
    let outside = run("/proc/self");
    assert!(
        outside.contains(&format!("is not a cgroup (cgroup2 is mounted at {mount})")),
        "{outside}"
    );
    let hostile = run("/no\x1b[31m\nsuch");
    assert!(
        hostile.contains("/no\\x1b[31m\\x0asuch is not a cgroup"),
        "{hostile}"
    );
    // A cgroup v1 hierarchy, where the host has one.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v1 = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup ")
            .then(|| left.split(' ').nth(4).map(str::to_string))?
    });
    match v1 {
        Some(v1) => {
            let line = run(&v1);
            assert!(
                line.contains("is a cgroup v1 directory; only cgroup2 can filter"),
                "{line}"
            );
        }
        None => eprintln!("note: no cgroup v1 hierarchy here; its error is not checked"),
    }
}

fn unknown_cgroup_is_one_clear_line() {
    let out = std::process::Command::new(tracer_bin())
        .args(["--cgroup", "/no/such/cgroup"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("shmget-trace: --cgroup: /no/such/cgroup is not a cgroup"),
        "{stderr}"
    );
}

/// Whether a successful shmget created its segment or opened one, and
/// whose: a segment that another uid created and this thread opens with
/// IPC_CREAT (the squatting pattern) is flagged.
fn created_opened_and_squatted_segments() {
    let mut segments = Segments::default();
    let foreign = unique_key(21);
    let own = unique_key(22);
    // Another uid (nobody) creates a segment anyone may open, and leaves it.
    let result = workload::run(&[
        "--uid",
        "65534",
        "--keep",
        &format!("native:{foreign}:4096:0o1666"),
    ])
    .remove(0);
    let creator = result["pid"].as_u64().unwrap();
    assert!(
        segments.track(result["ret"].as_i64().unwrap()) >= 0,
        "{result}"
    );

    let tracer = trace_this_thread("--json");
    let squatted = native_shmget(foreign, 0, IPC_CREAT);
    // Opened through another entry path where this process has one.
    #[cfg(target_arch = "x86_64")]
    let opened = ia32_ipc_shmget(foreign, 0, 0);
    #[cfg(not(target_arch = "x86_64"))]
    let opened = native_shmget(foreign, 0, 0);
    let created = segments.track(native_shmget(own, 4096, IPC_CREAT | 0o600));
    segments.track(native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600));
    let reopened = native_shmget(own, 0, IPC_CREAT);
    let done = tracer.stop();
    assert!(squatted >= 0 && opened >= 0 && created >= 0 && reopened == created);

    let events = done.json_events();
    assert_eq!(events.len(), 5, "{events:?}");
    let did = |e: &serde_json::Value| {
        (
            e["origin"].as_str().unwrap().to_string(),
            e["owner_uid"].as_u64(),
            e["creator_pid"].as_u64(),
            e["squat"].as_bool().unwrap(),
        )
    };
    let me = u64::from(std::process::id());
    assert_eq!(
        did(&events[0]),
        ("opened".into(), Some(65534), Some(creator), true)
    );
    assert_eq!(
        did(&events[1]),
        ("opened".into(), Some(65534), Some(creator), false)
    );
    assert_eq!(did(&events[2]), ("created".into(), None, None, false));
    assert_eq!(did(&events[3]), ("created".into(), None, None, false));
    // Not the namespace's newest segment any more: opened, though its own.
    assert_eq!(did(&events[4]), ("opened".into(), Some(0), Some(me), false));
}

/// `--events all`: a segment's whole life (shmget, shmat, shmdt, shmctl
/// IPC_STAT, SHM_LOCK, IPC_RMID) through each entry path, every event
/// checked; the default traces shmget alone.
fn segment_life_by_every_entry_path() {
    let all = Tracer::start(&["--json", "-t", &gettid().to_string(), "--events", "all"]);
    let wanted: Vec<serde_json::Value> = expect::EntryPath::ALL
        .iter()
        .copied()
        .flat_map(expect::segment_life)
        .collect();
    let line = all.tracing_line();
    let done = all.stop();
    let coverage = line.split_once("): ").map(|(_, c)| c);
    #[cfg(target_arch = "x86_64")]
    let paths = "x86_64 shmget/shmat/shmdt/shmctl, ia32 shmget/shmat/shmdt/shmctl, ia32 ipc";
    #[cfg(target_arch = "aarch64")]
    let paths = "aarch64 shmget/shmat/shmdt/shmctl, arm shmget/shmat/shmdt/shmctl";
    assert_eq!(coverage, Some(paths), "{line}");
    if let Some(mode) = attach_mode().filter(|m| m != "auto") {
        assert!(
            line.starts_with(&format!("shmget-trace: tracing ({mode})")),
            "{line}"
        );
    }
    let events = done.json_events();
    assert_eq!(events.len(), wanted.len(), "{events:#?}");
    for (event, want) in events.iter().zip(&wanted) {
        let wrong = expect::life_mismatches(event, want);
        assert!(wrong.is_empty(), "{event}: {wrong:?}");
    }
    // The default traces shmget alone (one tracer at a time: see above).
    let default = trace_this_thread("--json");
    for path in expect::EntryPath::ALL {
        expect::segment_life(*path);
    }
    let shmget_only = default.stop().json_events();
    assert_eq!(
        shmget_only.len(),
        expect::EntryPath::ALL.len(),
        "{shmget_only:?}"
    );
    assert!(shmget_only.iter().all(|e| e["event"] == "shmget"));
}

/// The events of a traced thread's shmget calls made with unusual rax
/// values: exactly those that the kernel ran as shmget (ENOENT for a
/// missing key, an id for IPC_PRIVATE), field for field, and nothing for
/// those it refused (ENOSYS).
fn assert_reports_calls_that_ran(done: &Finished, calls: &[Call]) {
    let ran: Vec<&Call> = calls.iter().filter(|c| c.ret != -38).collect();
    done.assert_success();
    let events = done.json_events();
    assert_eq!(
        events.len(),
        ran.len(),
        "one event per call that ran, none for ENOSYS: calls returned {:?}; events {events:?}",
        calls.iter().map(|c| c.ret).collect::<Vec<_>>()
    );
    for (event, call) in events.iter().zip(ran) {
        assert_event(event, call);
    }
    assert_eq!(done.summary(), (events.len() as u64, 0));
}

fn raw_shmget(nr: u64, abi: &'static str, key: i32, size: u64, shmflg: i32) -> Call {
    let ret = raw_syscall3(nr, key as u32 as u64, size, shmflg as u32 as u64);
    Call {
        abi,
        call: "shmget",
        key,
        size,
        shmflg,
        flags: if shmflg & IPC_CREAT != 0 {
            "IPC_CREAT"
        } else {
            "-"
        },
        ret,
    }
}

/// rax = 1 << 32 | 29: 6.x kernels run shmget by the low 32 bits (the
/// number is an int there); 5.10 fails it with ENOSYS, except while a
/// syscall tracepoint is attached (then it runs by the low 32 bits too).
/// Whatever the kernel did, the tracer reports exactly what ran.
fn syscall_numbers_with_high_bits_are_decoded_as_the_kernel_does() {
    let mut segments = Segments::default();
    let missing = unique_key(30);
    let tracer = trace_this_thread("--json");
    let nr = 1 << 32 | nix::libc::SYS_shmget as u64;
    let calls = [
        raw_shmget(nr, "x86_64", missing, 0, 0),
        raw_shmget(nr, "x86_64", IPC_PRIVATE, 4096, IPC_CREAT | 0o600),
        raw_shmget(0xffff_ffff_0000_0000 | nr, "x86_64", missing, 0, 0),
    ];
    for call in &calls {
        segments.track(call.ret);
        assert!(
            call.ret == -38 || call.ret == -2 || call.ret >= 0,
            "ran as shmget or ENOSYS: {}",
            call.ret
        );
    }
    assert_reports_calls_that_ran(&tracer.stop(), &calls);
}

/// rax = 0x40000000 | 29: x32 shmget, then 0x40000000 | 31: x32 shmctl.
/// Debian's cloud kernels (and this host's) have no CONFIG_X86_X32_ABI:
/// ENOSYS, no shared-memory function runs, and nothing may be reported.
/// Where x32 runs (a kernel booted with `syscall.x32=y`, as the VM matrix's
/// trixie-x32 is, where this fails if it does not), each call is reported
/// once with ABI x32, the shmctl as shmctl.
fn x32_calls_are_reported_only_where_they_run() {
    let mut segments = Segments::default();
    let missing = unique_key(31);
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--events", "all"]);
    let nr = X32_SYSCALL_BIT | nix::libc::SYS_shmget as u64;
    let calls = [
        raw_shmget(nr, "x32", missing, 0, 0),
        raw_shmget(nr, "x32", IPC_PRIVATE, 4096, IPC_CREAT | 0o600),
    ];
    let id = calls[1].ret;
    let rmid = (id >= 0).then(|| {
        let shmctl = X32_SYSCALL_BIT | nix::libc::SYS_shmctl as u64;
        raw_syscall3(shmctl, id as u64, IPC_RMID as u64, 0)
    });
    for call in &calls {
        segments.track(call.ret);
    }
    let done = tracer.stop();
    let expected = std::fs::read_to_string("/proc/cmdline")
        .unwrap_or_default()
        .split_whitespace()
        .any(|arg| arg == "syscall.x32=y");
    if calls[0].ret == -38 {
        assert!(
            !expected,
            "booted with syscall.x32=y, yet x32 calls fail with ENOSYS"
        );
        eprintln!(
            "note: this kernel has no x32 system calls (ENOSYS); checked that none is reported"
        );
        assert_reports_calls_that_ran(&done, &calls);
        return;
    }
    done.assert_success();
    let events = done.json_events();
    assert_eq!(events.len(), 3, "two shmget and one shmctl: {events:#?}");
    for (event, call) in events.iter().zip(&calls) {
        assert_event(event, call);
    }
    assert_eq!(rmid, Some(0), "x32 IPC_RMID");
    let shmctl = &events[2];
    assert_eq!(
        (
            &shmctl["abi"],
            &shmctl["event"],
            &shmctl["shmid"],
            &shmctl["cmd"],
            &shmctl["ret"]
        ),
        (
            &"x32".into(),
            &"shmctl".into(),
            &id.into(),
            &"IPC_RMID".into(),
            &0.into()
        ),
        "{shmctl}"
    );
    assert_eq!(done.summary(), (3, 0));
}

/// The mode this pass runs in, where the test is told (kprobe and fentry
/// see do_shmat; tracepoint does not).
fn sees_do_shmat() -> Option<bool> {
    attach_mode()
        .filter(|m| m != "auto")
        .map(|m| m == "kprobe" || m == "fentry")
}

/// ipc(SHMAT) with a result pointer the kernel cannot write: the segment
/// is attached (do_shmat succeeded) and the call fails with EFAULT. The
/// event says so: errno EFAULT, attach_addr_from present (`kernel`, with
/// the address, where the mode sees do_shmat; else `unknown`).
fn ipc_shmat_with_bad_result_pointer_says_it_attached() {
    let mut segments = Segments::default();
    let id = segments.track(native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600));
    assert!(id >= 0);
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--events", "shmat"]);
    let ret = ia32_ipc_shmat_at(id, 0, 0, 8); // raddr = 8: unmapped
    let mapped = segment_mappings(id);
    for addr in &mapped {
        assert_eq!(native_shmdt(*addr as i64), 0);
    }
    let done = tracer.stop();
    assert_eq!(ret, -14, "EFAULT");
    assert_eq!(mapped.len(), 1, "the segment was attached: {mapped:x?}");
    let events = done.json_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(
        (
            &event["event"],
            &event["call"],
            &event["ret"],
            &event["errno"]
        ),
        (
            &"shmat".into(),
            &"ipc".into(),
            &(-14).into(),
            &"EFAULT".into()
        ),
        "{event}"
    );
    let real = format!("{:#x}", mapped[0]);
    match event["attach_addr_from"].as_str() {
        Some("kernel") => assert_eq!(event["attach_addr"], real.as_str(), "{event}"),
        Some("unknown") => {
            assert!(event.get("attach_addr").is_none(), "{event}");
            assert_ne!(
                sees_do_shmat(),
                Some(true),
                "this mode sees do_shmat: {event}"
            );
        }
        _ => panic!("the event must say the segment was attached: {event}"),
    }
}

/// ipc(SHMAT) writes the address to the caller's memory, where another
/// thread can replace it at once. The reported address is the real one
/// (taken from the kernel), or marked as read from user memory, every
/// time.
fn ipc_shmat_address_is_the_kernels_or_marked() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const CALLS: usize = 3000;
    let mut segments = Segments::default();
    let id = segments.track(native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600));
    assert!(id >= 0);
    let slot = low_buffer();
    let target = low_buffer(); // replaced by the segment (SHM_REMAP), then freed
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: a low_buffer() mapping, never unmapped.
                unsafe { std::ptr::write_volatile(slot as u64 as *mut u32, 0xdead_beef) };
            }
        })
    };
    let tid = gettid().to_string();
    let tracer = Tracer::start(&["--json", "-t", &tid, "--events", "shmat"]);
    let mut failures = vec![];
    for _ in 0..CALLS {
        let ret = ia32_ipc_shmat_at(id, target, SHM_REMAP, slot);
        if ret != 0 {
            failures.push(ret);
            continue;
        }
        assert_eq!(native_shmdt(i64::from(target)), 0);
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    let done = tracer.stop();
    assert!(failures.is_empty(), "ipc(SHMAT) failed: {failures:?}");
    let events = done.json_events();
    assert_eq!(events.len(), CALLS);
    let real = format!("{target:#x}");
    let wrong = events
        .iter()
        .filter(|e| e["attach_addr"] != real.as_str())
        .count();
    let mut from_user = 0;
    for event in &events {
        match event["attach_addr_from"].as_str() {
            Some("kernel") => assert_eq!(event["attach_addr"], real.as_str(), "{event}"),
            Some("user") => from_user += 1,
            _ => panic!(
                "neither the kernel's address nor marked as read from user memory \
                 ({wrong} of {CALLS} events name another address than {real}): {event}"
            ),
        }
    }
    if sees_do_shmat() == Some(true) {
        assert_eq!(from_user, 0, "this mode takes the address from the kernel");
    }
}

/// Ends the process when dropped (a test that failed midway).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// AArch32 callers on arm64: a 32-bit ARM process makes a segment's life
/// with the AArch32 syscalls, each event checked field for field with abi
/// `arm`. Its shmget and shmdt run the same kernel functions as arm64's own
/// (the ABI comes from the caller's saved state), shmat and shmctl compat
/// ones; shmat's address lies high in the 32-bit space, which the
/// raw_syscalls tracepoint sees sign-extended: every mode must report the
/// same 32-bit number.
fn arm32_segment_life_is_reported_field_for_field() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut segments = Segments::default();
    let mut child = Reaped(
        Command::new(arm32_workload())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the AArch32 workload"),
    );
    let pid = child.0.id();
    let tracer = Tracer::start(&["--json", "-p", &pid.to_string(), "--events", "all"]);
    child.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = wait_with_timeout(&mut child.0, EXIT_TIMEOUT);
    let done = tracer.stop();
    let result: serde_json::Value = serde_json::from_str(out.trim()).expect("workload JSON");
    let number = |name: &str| result[name].as_i64().unwrap();
    segments.track(number("shmget"));
    assert!(status.success(), "{status} {result}");
    assert!(number("shmget") >= 0 && number("shmat") > 0, "{result}");
    for call in ["shmdt", "stat", "lock", "rmid"] {
        assert_eq!(number(call), 0, "{call}: {result}");
    }
    let (shmat, tid) = (number("shmat"), number("tid") as u32);
    let wanted = expect::life_events("arm", false, number("shmget"), shmat, shmat);
    let events = done.json_events();
    assert_eq!(events.len(), wanted.len(), "{events:#?}");
    for (event, want) in events.iter().zip(&wanted) {
        let wrong = expect::life_mismatches_of(event, want, pid, tid);
        assert!(wrong.is_empty(), "{event}: {wrong:?}");
        assert_eq!(event["comm"], "shm-arm32", "{event}");
    }
}

/// The event of a workload's step: same pid, same ret.
fn event_of<'e>(
    events: &'e [serde_json::Value],
    result: &serde_json::Value,
) -> &'e serde_json::Value {
    let op = if result["step"] == "shmat" {
        "shmat"
    } else {
        "shmget"
    };
    events
        .iter()
        .find(|e| e["pid"] == result["pid"] && e["ret"] == result["ret"] && e["event"] == op)
        .unwrap_or_else(|| panic!("no event for {result}: {events:?}"))
}

/// (reason_code, reason) of an event.
fn reason_of(event: &serde_json::Value) -> (&str, &str) {
    (
        event["reason_code"].as_str().unwrap_or("<none>"),
        event["reason"].as_str().unwrap_or("<none>"),
    )
}

fn read_kernel_limits() -> Vec<String> {
    ["shmmax", "shmmni", "shmall"]
        .iter()
        .map(|n| std::fs::read_to_string(format!("/proc/sys/kernel/{n}")).unwrap())
        .collect()
}

/// A process in an ipc namespace of its own, with low limits there: each
/// limit it runs into is named with the namespace's numbers (and a size
/// of 0, and a huge page size the kernel lacks), its events carry that
/// namespace (not the host's), and the host's limits stay.
fn failures_in_a_private_ipc_namespace_name_the_limit() {
    let host_limits = read_kernel_limits();
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as u64;
    let two_pages = (2 * page).to_string();
    let one_page = page.to_string();
    let create = format!("{:#o}", IPC_CREAT | 0o600);
    let step = |size: &str| format!("native:0:{size}:{create}");
    // 16 MB huge pages: neither x86_64 nor arm64 (4 KiB pages) has them.
    let huge_16mb = format!("native:0:4096:{:#o}", IPC_CREAT | SHM_HUGETLB | 24 << 26);
    let workload = Workload::spawn_waiting(&[
        "--unshare-ipc",
        "sysctl:shmmax:8192",
        "sysctl:shmmni:2",
        "sysctl:shmall:3",
        &step("9000"),
        &step("0"),
        &huge_16mb,
        &step(&two_pages), // 2 of 3 pages
        &step(&two_pages), // 2 + 2 > 3: shmall
        &step(&one_page),  // 3 of 3 pages, 2 segments
        "sysctl:shmall:100",
        &step(&one_page), // 2 of 2 segments: shmmni
    ]);
    let tracer = Tracer::start(&["--json", "-p", &workload.pid().to_string()]);
    let results = workload.go();
    let events = tracer.stop().json_events();
    assert_eq!(results.len(), 7, "{results:?}");
    assert_eq!(events.len(), 7, "{events:?}");
    let rets: Vec<i64> = results.iter().map(|r| r["ret"].as_i64().unwrap()).collect();
    assert_eq!(
        (&rets[..3], rets[3] >= 0, rets[4], rets[5] >= 0, rets[6]),
        (&[-22, -22, -22][..], true, -28, true, -28),
        "{results:?}"
    );
    // In order: the tracer sees only this workload.
    let reasons: Vec<(&str, &str)> = events.iter().map(reason_of).collect();
    assert_eq!(reasons[0], ("shmmax", "size 9000 > shmmax 8192"));
    assert_eq!(reasons[1], ("shmmin", "size 0 < shmmin 1"));
    assert_eq!(
        reasons[2],
        (
            "hugetlb_size",
            "huge pages of 16MB not supported (inferred: the size is within shmmax 8192; not read)"
        )
    );
    assert_eq!(
        reasons[4],
        ("shmall", "shmall: 2 of 3 pages in use, 2 asked")
    );
    assert_eq!(reasons[6], ("shmmni", "shmmni: 2 of 2 segments in use"));
    for r in [3, 5] {
        assert_eq!(events[r].get("reason"), None, "{}", events[r]);
    }
    let own = expect::own_namespace("ipc");
    for (event, result) in events.iter().zip(&results) {
        assert_eq!(event["ipcns"], result["ipcns"], "{event}");
        assert_ne!(event["ipcns"], own, "{event}");
    }
    assert_eq!(
        read_kernel_limits(),
        host_limits,
        "the host's limits are untouched"
    );
}

/// Segments made before the one a test looks up by key: its key's bucket
/// and its index lie beyond the first ones (the key table grows from 64
/// buckets; an index tree leaf holds 64 ids).
const FILLER_SEGMENTS: usize = 200;

/// Failures on a key or id that exists or not: ENOENT, EEXIST with the
/// segment's id, owner and creator, EINVAL on open with both sizes,
/// EACCES across uids with mode and ids (shmget and shmat), in an ipc
/// namespace of the workload's own where many segments were made before
/// (the key is found exactly wherever it lies); and EINVAL of shmat and
/// shmctl on an id that names no segment, here.
fn failures_name_the_segment_and_the_ids() {
    let (missing, key) = (unique_key(40), unique_key(41));
    let gone = native_shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600);
    assert!(gone >= 0);
    syscalls::remove_segment(gone);
    let fillers = (0..FILLER_SEGMENTS).map(|i| format!("native:{}:1:0o1600", 0x100 + i));
    let calls = [
        format!("native:{key}:4096:0o1600"),
        format!("native:{key}:0:0o3600"),
        format!("native:{key}:8192:0o600"),
        format!("native:{missing}:0:0"),
        "--uid".into(),
        "65534".into(),
        format!("native:{key}:0:0o600"),
        "shmat:last:0".into(),
    ];
    let steps: Vec<String> = std::iter::once("--unshare-ipc".to_string())
        .chain(fillers)
        .chain(calls)
        .collect();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let workload = Workload::spawn_waiting(&steps);
    let me = std::process::id().to_string();
    let pids = format!("{me},{}", workload.pid());
    let tracer = Tracer::start(&["--json", "-p", &pids, "--events", "shmget,shmat,shmctl"]);
    let tid = gettid();
    let rets = [native_shmat(gone, 0), native_shmctl(gone, IPC_STAT, 0)];
    let mut results = workload.go();
    let events = tracer.stop().json_events();
    assert_eq!(rets, [-22, -22]);
    assert!(
        results.len() > FILLER_SEGMENTS
            && results[..FILLER_SEGMENTS]
                .iter()
                .all(|r| r["ret"].as_i64() >= Some(0)),
        "{results:?}"
    );
    results.drain(..FILLER_SEGMENTS);
    let mine: Vec<&serde_json::Value> = events.iter().filter(|e| e["tid"] == tid).collect();
    assert_eq!(mine.len(), 2, "{events:?}");
    let ns = expect::own_namespace("ipc");
    let no_id = format!("no segment with id {gone} in ipc namespace {ns}");
    assert_eq!(reason_of(mine[0]), ("no_id", no_id.as_str()));
    assert_eq!(reason_of(mine[1]), ("no_id", no_id.as_str()));

    let rets: Vec<i64> = results.iter().map(|r| r["ret"].as_i64().unwrap()).collect();
    let id = rets[0];
    assert!(id >= 0, "{results:?}");
    assert_eq!(&rets[1..], [-17, -22, -2, -13, -13], "{results:?}");
    let theirs: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["pid"] == results[0]["pid"] && e["event"] != "shmctl")
        .skip(FILLER_SEGMENTS)
        .collect();
    assert_eq!(theirs.len(), 6, "{events:?}");
    let (wpid, wns) = (&results[0]["pid"], &results[0]["ipcns"]);
    let hex = format!("0x{:08x}", key as u32);
    assert_eq!(
        reason_of(theirs[1]),
        (
            "exists",
            format!("segment {hex} exists: id {id}, owner uid 0, created by pid {wpid} (uid 0)")
                .as_str()
        )
    );
    assert_eq!(
        reason_of(theirs[2]),
        (
            "too_small",
            format!("segment {hex} has 4096 bytes, 8192 asked").as_str()
        )
    );
    assert_eq!(
        reason_of(theirs[3]),
        (
            "no_key",
            format!(
                "no segment with key 0x{:08x} in ipc namespace {wns}, and no IPC_CREAT",
                missing as u32
            )
            .as_str()
        )
    );
    let denied = |segment: &str| {
        format!(
            "segment {segment} mode 0600, owner uid 0 gid 0, creator uid 0 gid 0: \
             euid 65534 gid 65534 is other, granted ---, asked rw-"
        )
    };
    let by_key = denied(&format!("{hex} (id {id})"));
    assert_eq!(reason_of(theirs[4]), ("mode", by_key.as_str()));
    assert_eq!(
        reason_of(theirs[5]),
        ("mode", denied(&format!("id {id}")).as_str())
    );
}

const HUGE_2MB: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

fn huge_pages_count(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("{HUGE_2MB}/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What hugetlb_failures_say_why needs: 2 MB huge pages that cannot be
/// overcommitted (else no ENOMEM), and vm.hugetlb_shm_group root's.
fn huge_pages_missing() -> Option<String> {
    let group = std::fs::read_to_string("/proc/sys/vm/hugetlb_shm_group").unwrap_or_default();
    match huge_pages_count("nr_overcommit_hugepages") {
        None => Some(format!("this kernel has no 2 MB huge pages ({HUGE_2MB})")),
        Some(0) if group.trim() == "0" => None,
        Some(0) => Some(format!("vm.hugetlb_shm_group is {}, not 0", group.trim())),
        Some(n) => Some(format!("{n} huge pages can be overcommitted: no ENOMEM")),
    }
}

/// SHM_HUGETLB failures, where the kernel has 2 MB huge pages: EPERM for
/// a uid without CAP_IPC_LOCK outside vm.hugetlb_shm_group, ENOMEM for more
/// pages than are free.
fn hugetlb_failures_say_why() {
    let free = huge_pages_count("free_hugepages").expect("free_hugepages");
    let huge = IPC_CREAT | SHM_HUGETLB | SHM_HUGE_2MB | 0o600;
    let unprivileged = Workload::spawn_waiting(&[
        "--memlock",
        "0",
        "--uid",
        "65534",
        &format!("native:0:{}:{huge}", 2 << 20),
    ]);
    let tracer = Tracer::start(&[
        "--json",
        "-p",
        &format!("{},{}", std::process::id(), unprivileged.pid()),
    ]);
    let results = unprivileged.go();
    // More than are free (the reserve fails; none can be made).
    let too_many = native_shmget(IPC_PRIVATE, (free + 1) * (2 << 20), huge);
    let mut segments = Segments::default();
    segments.track(too_many);
    let events = tracer.stop().json_events();
    assert_eq!(results[0]["ret"], -1, "EPERM: {results:?}");
    let (code, text) = reason_of(event_of(&events, &results[0]));
    assert_eq!(code, "hugetlb_perm", "{text}");
    assert!(
        text.starts_with("no CAP_IPC_LOCK, and gid 65534 is not vm.hugetlb_shm_group 0"),
        "{text}"
    );
    assert_eq!(
        too_many,
        -12,
        "ENOMEM for {} pages with {free} free",
        free + 1
    );
    let event = events
        .iter()
        .find(|e| e["tid"] == gettid())
        .unwrap_or_else(|| panic!("{events:?}"));
    let (code, text) = reason_of(event);
    assert_eq!(code, "hugetlb_pages", "{text}");
    assert!(
        text.starts_with(&format!("huge pages of 2MB: {} asked; ", free + 1)),
        "{text}"
    );
}

/// SHM_LOCK of a segment larger than the caller's RLIMIT_MEMLOCK (not 0,
/// which is EPERM), as its owner without CAP_IPC_LOCK: ENOMEM, with both
/// sizes; and SHM_LOCK of an id that names no segment: no_id.
fn shm_lock_failures_say_why() {
    let workload = Workload::spawn_waiting(&[
        "--unshare-ipc",
        "--memlock",
        "4096",
        "--uid",
        "65534",
        &format!("native:0:{}:{:#o}", 1 << 20, IPC_CREAT | 0o600),
        &format!("shmctl:last:{SHM_LOCK}"),
        &format!("shmctl:{}:{SHM_LOCK}", i32::MAX),
    ]);
    let tracer = Tracer::start(&[
        "--json",
        "-p",
        &workload.pid().to_string(),
        "--events",
        "shmctl",
    ]);
    let results = workload.go();
    let all = tracer.stop().json_events();
    let rets: Vec<i64> = results.iter().map(|r| r["ret"].as_i64().unwrap()).collect();
    assert!(rets[0] >= 0, "{results:?}");
    assert_eq!(&rets[1..], [-12, -22], "{results:?}");
    // Not the workload's IPC_RMID at exit.
    let events: Vec<&serde_json::Value> = all.iter().filter(|e| e["cmd"] == "SHM_LOCK").collect();
    assert_eq!(events.len(), 2, "{all:?}");
    assert_eq!(
        reason_of(events[0]),
        (
            "memlock",
            "SHM_LOCK of 1048576 bytes, RLIMIT_MEMLOCK 4096 bytes (not exact: what the user has \
             locked already is not read)"
        )
    );
    let no_id = format!(
        "no segment with id {} in ipc namespace {}",
        i32::MAX,
        results[0]["ipcns"]
    );
    assert_eq!(reason_of(events[1]), ("no_id", no_id.as_str()));
}

/// A process in a container's cgroup that keeps the host's ipc namespace
/// is marked (host_ipc, and HOST-IPC in the wide table); one in its own
/// ipc namespace is not, and its ipcns is its own.
fn host_ipc_marks_a_container_in_the_hosts_ipc_namespace() {
    const ID: &str = "5e1f2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";
    let cgroup = TempCgroup::new(&format!("docker-{ID}.scope"));
    let key = unique_key(42);
    let step = format!("native:{key}:0:0");
    let key_arg = key.to_string();
    let run = |args: &[&str]| {
        let tracer = Tracer::start(args);
        let mut results = vec![];
        for unshare in [false, true] {
            let mut steps = vec![];
            if unshare {
                steps.push("--unshare-ipc");
            }
            steps.push(step.as_str());
            let workload = Workload::spawn_waiting(&steps);
            cgroup.add(workload.pid());
            results.extend(workload.go());
        }
        (tracer.stop(), results)
    };
    let (done, results) = run(&["--json", "-k", &key_arg]);
    let events = done.json_events();
    assert_eq!(events.len(), 2, "{events:?}");
    let host = expect::own_namespace("ipc");
    for (event, result) in events.iter().zip(&results) {
        assert_eq!(event["container"], "docker:5e1f2b1a0e9d", "{event}");
        assert_eq!(event["ipcns"], result["ipcns"], "{event}");
    }
    assert_eq!(
        (&events[0]["ipcns"], &events[0]["host_ipc"]),
        (&host.into(), &true.into())
    );
    assert_ne!(events[1]["ipcns"], host);
    assert_eq!(events[1]["host_ipc"], false);
    let (table, _) = run(&["-w", "-k", &key_arg]);
    let rows: Vec<&str> = table.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", table.stdout);
    assert!(
        rows[0].contains("docker:5e1f2b1a0e9d HOST-IPC"),
        "{}",
        table.stdout
    );
    assert!(!rows[1].contains("HOST-IPC"), "{}", table.stdout);
}

fn main() {
    common::main(&[
        bpf_per_mode(
            "native_shmget_calls_are_reported_field_for_field",
            native_shmget_calls_are_reported_field_for_field,
        ),
        bpf_per_mode(
            "ia32_shmget_and_ipc_calls_are_reported_field_for_field",
            ia32_shmget_and_ipc_calls_are_reported_field_for_field,
        )
        .only_on("x86_64"),
        bpf_per_mode(
            "arm32_segment_life_is_reported_field_for_field",
            arm32_segment_life_is_reported_field_for_field,
        )
        .only_on("aarch64"),
        bpf_per_mode(
            "hostile_comm_stays_on_one_line_in_every_format",
            hostile_comm_stays_on_one_line_in_every_format,
        ),
        bpf_per_mode(
            "lost_events_are_counted_exactly",
            lost_events_are_counted_exactly,
        ),
        bpf_per_mode(
            "repeated_failures_fold_with_their_reason",
            repeated_failures_fold_with_their_reason,
        ),
        bpf_per_mode(
            "identical_flood_folds_into_counted_lines",
            identical_flood_folds_into_counted_lines,
        ),
        bpf_per_mode(
            "identical_calls_apart_stay_lines_and_pending_folds_are_written",
            identical_calls_apart_stay_lines_and_pending_folds_are_written,
        ),
        bpf_per_mode(
            "distinct_flood_keeps_other_processes_calls",
            distinct_flood_keeps_other_processes_calls,
        ),
        bpf_per_mode("cgroup_filter_and_path", cgroup_filter_and_path),
        bpf(
            "unknown_cgroup_is_one_clear_line",
            unknown_cgroup_is_one_clear_line,
        ),
        bpf(
            "forged_container_names_say_whose_subtree",
            forged_container_names_say_whose_subtree,
        ),
        bpf(
            "cgroup_arguments_get_clear_errors",
            cgroup_arguments_get_clear_errors,
        ),
        bpf(
            "cgroup2_mounted_from_a_subtree_or_not_at_all",
            cgroup2_mounted_from_a_subtree_or_not_at_all,
        ),
        bpf(
            "new_cgroups_are_named_at_once_in_every_format",
            new_cgroups_are_named_at_once_in_every_format,
        ),
        bpf_per_mode(
            "created_opened_and_squatted_segments",
            created_opened_and_squatted_segments,
        ),
        bpf_per_mode(
            "segment_life_by_every_entry_path",
            segment_life_by_every_entry_path,
        ),
        bpf_per_mode(
            "syscall_numbers_with_high_bits_are_decoded_as_the_kernel_does",
            syscall_numbers_with_high_bits_are_decoded_as_the_kernel_does,
        )
        .only_on("x86_64"),
        bpf_per_mode(
            "x32_calls_are_reported_only_where_they_run",
            x32_calls_are_reported_only_where_they_run,
        )
        .only_on("x86_64"),
        bpf_per_mode(
            "ipc_shmat_with_bad_result_pointer_says_it_attached",
            ipc_shmat_with_bad_result_pointer_says_it_attached,
        )
        .only_on("x86_64"),
        bpf_per_mode(
            "ipc_shmat_address_is_the_kernels_or_marked",
            ipc_shmat_address_is_the_kernels_or_marked,
        )
        .only_on("x86_64"),
        bpf_per_mode(
            "failures_in_a_private_ipc_namespace_name_the_limit",
            failures_in_a_private_ipc_namespace_name_the_limit,
        ),
        bpf_per_mode(
            "failures_name_the_segment_and_the_ids",
            failures_name_the_segment_and_the_ids,
        ),
        bpf_per_mode("shm_lock_failures_say_why", shm_lock_failures_say_why),
        bpf_per_mode("hugetlb_failures_say_why", hugetlb_failures_say_why)
            .unless_missing(huge_pages_missing),
        bpf_per_mode(
            "host_ipc_marks_a_container_in_the_hosts_ipc_namespace",
            host_ipc_marks_a_container_in_the_hosts_ipc_namespace,
        ),
    ])
}
