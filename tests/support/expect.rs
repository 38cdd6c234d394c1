//! What shmget-trace must report for a shmget this thread made, field for
//! field. Shared by the integration tests (which the VM matrix runs in each guest).

#![allow(dead_code)]

use serde_json::{json, Value};

use super::syscalls::*;

/// The TSV columns, and the JSON keys, in order.
#[rustfmt::skip]
pub const FIELDS: [&str; 37] = [
    "time", "pid", "tid", "ppid", "uid", "gid", "comm", "abi", "call", "key", "size", "shmflg",
    "flags", "mode", "ret", "errno", "cgroup", "cgroup_path", "container", "pidns", "mntns",
    "origin", "owner_uid", "creator_pid", "squat", "event", "shmid", "cmd", "addr",
    "attach_addr", "attach_addr_from", "count", "last_time", "ipcns", "host_ipc", "reason",
    "reason_code",
];

/// One call the test made, and what the tracer must report for it.
pub struct Call {
    pub abi: &'static str,
    pub call: &'static str,
    pub key: i32,
    pub size: u64,
    pub shmflg: i32,
    pub flags: &'static str,
    pub ret: i64,
}

impl Call {
    /// Makes a shmget by `path` and keeps what the kernel returned.
    pub fn shmget(path: EntryPath, key: i32, size: u32, shmflg: i32, flags: &'static str) -> Call {
        let ret = match path {
            EntryPath::X64 => native_shmget(key, u64::from(size), shmflg),
            EntryPath::Ia32 => ia32_shmget(key, size, shmflg),
            EntryPath::Ia32Ipc => ia32_ipc_shmget(key, size, shmflg),
        };
        Call {
            abi: if path == EntryPath::X64 {
                NATIVE_ABI
            } else {
                "ia32"
            },
            call: if path == EntryPath::Ia32Ipc {
                "ipc"
            } else {
                "shmget"
            },
            key,
            size: u64::from(size),
            shmflg,
            flags,
            ret,
        }
    }
}

/// Where cgroup2 is mounted.
pub fn cgroup2_mount() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split(' ').nth(4).map(str::to_string))?
    })
}

/// The cgroup v2 path of this process, from the cgroup2 root.
pub fn own_cgroup_path() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// The cgroup v2 id of this process: the inode of its cgroup directory.
pub fn own_cgroup_id() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("{}{}", cgroup2_mount()?, own_cgroup_path()?);
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The inode number of one of this thread's namespaces (`pid_for_children`, `mnt`).
pub fn own_namespace(name: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/thread-self/ns/{name}"))
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Every way `event` differs from what this thread's `call` must give,
/// one line each; empty when it is right.
pub fn mismatches(event: &Value, call: &Call) -> Vec<String> {
    let errno = if call.ret < 0 {
        Value::from(format!(
            "{:?}",
            nix::errno::Errno::from_raw(-call.ret as i32)
        ))
    } else {
        Value::Null
    };
    let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
    let mut wrong = vec![];
    let mut expected = json!({
        "pid": std::process::id(),
        "tid": gettid(),
        "ppid": nix::unistd::getppid().as_raw(),
        "uid": nix::unistd::getuid().as_raw(),
        "gid": nix::unistd::getgid().as_raw(),
        "comm": comm.trim_end_matches('\n'),
        "abi": call.abi,
        "call": call.call,
        "key": format!("0x{:08x}", call.key as u32),
        "size": call.size,
        "shmflg": format!("0x{:x}", call.shmflg as u32),
        "flags": call.flags,
        "mode": call.shmflg & 0o777,
        "ret": call.ret,
        "errno": errno,
        "event": "shmget",
        "shmid": null, "cmd": null, "addr": null, "attach_addr": null,
        "count": 1, "last_time": null,
        "pidns": own_namespace("pid_for_children"),
        "mntns": own_namespace("mnt"),
        "ipcns": own_namespace("ipc"),
    });
    // What the call did, where its flags decide it (IPC_CREAT alone on a
    // key is tested on its own).
    const IPC_CREAT: i32 = 0o1000;
    const IPC_EXCL: i32 = 0o2000;
    let creates = call.key == 0 || call.shmflg & (IPC_CREAT | IPC_EXCL) == IPC_CREAT | IPC_EXCL;
    if call.ret < 0 {
        for field in ["origin", "owner_uid", "creator_pid", "squat"] {
            expected[field] = Value::Null;
        }
        // Those whose cause the flags and the state settle; every failed
        // shmget has a reason.
        match (call.ret, call.shmflg & IPC_CREAT) {
            (-2, 0) => expected["reason_code"] = "no_key".into(),
            (-17, _) => expected["reason_code"] = "exists".into(),
            _ if !event["reason_code"].is_string() => {
                wrong.push(format!("reason_code: got {}", event["reason_code"]))
            }
            _ => {}
        }
        if !event["reason"].is_string() {
            wrong.push(format!("reason: got {}", event["reason"]));
        }
    } else {
        expected["reason"] = Value::Null;
        expected["reason_code"] = Value::Null;
    }
    // A container in the host's ipc namespace, as these tests run.
    let host_ipc = &event["host_ipc"];
    if !(host_ipc.is_null() || (event["container"].is_string() && host_ipc == true)) {
        wrong.push(format!("host_ipc: got {host_ipc}"));
    }
    if call.ret >= 0 && (creates || call.shmflg & IPC_CREAT == 0) {
        expected["origin"] = if creates { "created" } else { "opened" }.into();
        expected["squat"] = false.into();
        if creates {
            expected["owner_uid"] = Value::Null;
            expected["creator_pid"] = Value::Null;
        }
    }
    let cgroup = own_cgroup_id();
    if let Some(id) = cgroup {
        expected["cgroup"] = id.into();
        expected["cgroup_path"] = own_cgroup_path().into();
    }
    if !(event["container"].is_null() || event["container"].is_string()) {
        wrong.push(format!(
            "container: got {}, want absent or a string",
            event["container"]
        ));
    }
    for (field, want) in expected.as_object().unwrap() {
        if &event[field] != want {
            wrong.push(format!("{field}: got {} want {want}", event[field]));
        }
    }
    if cgroup.is_none() && event["cgroup"].as_u64().is_none() {
        wrong.push(format!("cgroup: got {}, want a number", event["cgroup"]));
    }
    match event["time"].as_str() {
        Some(t) if t.len() == 30 && t.ends_with('Z') && t.as_bytes()[10] == b'T' => {}
        _ => wrong.push(format!(
            "time: got {} want RFC 3339 UTC with nanoseconds",
            event["time"]
        )),
    }
    if let Some(object) = event.as_object() {
        for field in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            wrong.push(format!("unexpected field {field}"));
        }
    }
    wrong
}

/// The `abi` of this architecture's own (64-bit) calls: its name as Rust
/// and the kernel's audit architectures spell it.
pub const NATIVE_ABI: &str = std::env::consts::ARCH;

/// The ways into the kernel that this test process can take itself: X64
/// is the native syscall (x86_64 or aarch64); the i386 ones are x86_64's.
/// (AArch32 calls need a 32-bit process: tests/support/arm32-workload.c.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPath {
    X64,
    Ia32,
    Ia32Ipc,
}

impl EntryPath {
    #[cfg(target_arch = "x86_64")]
    pub const ALL: &[EntryPath] = &[EntryPath::X64, EntryPath::Ia32, EntryPath::Ia32Ipc];
    #[cfg(not(target_arch = "x86_64"))]
    pub const ALL: &[EntryPath] = &[EntryPath::X64];
}

/// Makes one segment's whole life through one entry path: shmget, shmat
/// (read-only), shmdt, shmctl IPC_STAT, SHM_LOCK and IPC_RMID. Returns,
/// per call, the fields the tracer must report (null: must be absent).
pub fn segment_life(path: EntryPath) -> Vec<Value> {
    let abi = if path == EntryPath::X64 {
        NATIVE_ABI
    } else {
        "ia32"
    };
    let via_ipc = path == EntryPath::Ia32Ipc;
    let low = low_buffer();
    let create = IPC_CREAT | 0o600;
    let id = match path {
        EntryPath::X64 => native_shmget(IPC_PRIVATE, 4096, create),
        EntryPath::Ia32 => ia32_shmget(IPC_PRIVATE, 4096, create),
        EntryPath::Ia32Ipc => ia32_ipc_shmget(IPC_PRIVATE, 4096, create),
    };
    assert!(id >= 0, "shmget {path:?}: {id}");
    // shmat returns the address; ipc(SHMAT) returns 0 and writes it.
    let at_ret = match path {
        EntryPath::X64 => native_shmat(id, SHM_RDONLY),
        EntryPath::Ia32 => ia32_shmat(id, SHM_RDONLY),
        EntryPath::Ia32Ipc => ia32_ipc_shmat(id, SHM_RDONLY, low),
    };
    let addr = if via_ipc {
        i64::from(read_low(low))
    } else {
        at_ret
    };
    assert!(
        at_ret >= 0 && addr > 0,
        "shmat {path:?}: {at_ret} {addr:#x}"
    );
    let dt_ret = match path {
        EntryPath::X64 => native_shmdt(addr),
        EntryPath::Ia32 => ia32_shmdt(addr),
        EntryPath::Ia32Ipc => ia32_ipc_shmdt(addr),
    };
    // Through ipc(), 32-bit callers ask for the 64-bit layout with IPC_64,
    // as glibc does; the direct syscall always uses it and takes no flag.
    let stat = if via_ipc { IPC_STAT | IPC_64 } else { IPC_STAT };
    let ctl = |cmd: i32| match path {
        EntryPath::X64 => native_shmctl(id, cmd, u64::from(low)),
        EntryPath::Ia32 => ia32_shmctl(id, cmd, low),
        EntryPath::Ia32Ipc => ia32_ipc_shmctl(id, cmd, low),
    };
    let stat_ret = ctl(stat);
    let lock_ret = ctl(SHM_LOCK);
    let rmid_ret = ctl(IPC_RMID);
    assert_eq!(
        (dt_ret, stat_ret, lock_ret, rmid_ret),
        (0, 0, 0, 0),
        "{path:?}"
    );
    life_events(abi, via_ipc, id, at_ret, addr)
}

/// What the tracer must report for a segment life made by the ABI `abi`
/// (through ipc() when `via_ipc`): the id shmget gave, what shmat returned,
/// and the address it attached at.
pub fn life_events(abi: &str, via_ipc: bool, id: i64, at_ret: i64, addr: i64) -> Vec<Value> {
    let call = |op: &str| {
        if via_ipc {
            "ipc".to_string()
        } else {
            op.to_string()
        }
    };
    let none = Value::Null;
    let base = |event: &str, ret: i64| {
        json!({
            "event": event, "abi": abi, "call": call(event), "ret": ret, "errno": none,
            "key": none, "size": none, "mode": none,
            "shmflg": none, "flags": none, "shmid": none, "cmd": none, "addr": none,
            "attach_addr": none, "origin": none,
        })
    };
    let mut get = base("shmget", id);
    get["key"] = "0x00000000".into();
    get["size"] = 4096.into();
    get["mode"] = 0o600.into();
    get["shmflg"] = "0x380".into();
    get["flags"] = "IPC_CREAT".into();
    get["origin"] = "created".into();
    let mut at = base("shmat", at_ret);
    at["shmid"] = id.into();
    at["shmflg"] = format!("0x{SHM_RDONLY:x}").into();
    at["flags"] = "SHM_RDONLY".into();
    at["addr"] = "0x0".into();
    at["attach_addr"] = format!("{addr:#x}").into();
    if !via_ipc {
        // ipc(SHMAT)'s comes from the kernel or from user memory, by mode.
        at["attach_addr_from"] = "kernel".into();
    }
    let mut dt = base("shmdt", 0);
    dt["addr"] = format!("{addr:#x}").into();
    let ctl_event = |cmd: &str| {
        let mut event = base("shmctl", 0);
        event["shmid"] = id.into();
        event["cmd"] = cmd.into();
        event
    };
    // ipc() callers and AArch32 ones (whose shmctl is the old one, as
    // glibc calls it) ask for the 64-bit layout with IPC_64.
    let stat_name = if via_ipc || abi == "arm" {
        "IPC_STAT|IPC_64"
    } else {
        "IPC_STAT"
    };
    vec![
        get,
        at,
        dt,
        ctl_event(stat_name),
        ctl_event("SHM_LOCK"),
        ctl_event("IPC_RMID"),
    ]
}

/// How `event` differs from one of [`segment_life`]'s expectations.
pub fn life_mismatches(event: &Value, want: &Value) -> Vec<String> {
    life_mismatches_of(event, want, std::process::id(), gettid())
}

/// The same for calls that process `pid`, thread `tid` made.
pub fn life_mismatches_of(event: &Value, want: &Value, pid: u32, tid: u32) -> Vec<String> {
    let mut wrong = vec![];
    for (field, value) in want.as_object().unwrap() {
        if &event[field] != value {
            wrong.push(format!("{field}: got {} want {value}", event[field]));
        }
    }
    for (field, value) in [("pid", Value::from(pid)), ("tid", Value::from(tid))] {
        if event[field] != value {
            wrong.push(format!("{field}: got {} want {value}", event[field]));
        }
    }
    wrong
}
