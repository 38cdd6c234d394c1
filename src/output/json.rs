//! `--json`: one object per line, the TSV column names as keys. Integers are
//! numbers except `key` and `shmflg`, which keep their hex text; `errno` is
//! null on success; `cgroup_path` and `container` are left out when there
//! is none.

use std::borrow::Cow;
use std::io;

use serde::Serialize;

use super::TextFields;
use crate::decode::errno_name;
use crate::event::Event;

#[derive(Serialize)]
struct JsonEvent<'a> {
    time: Cow<'a, str>,
    pid: u32,
    tid: u32,
    ppid: u32,
    uid: u32,
    gid: u32,
    comm: Cow<'a, str>,
    abi: &'static str,
    call: &'static str,
    key: Cow<'a, str>,
    size: u64,
    shmflg: Cow<'a, str>,
    flags: Cow<'a, str>,
    mode: u32,
    ret: i64,
    errno: Option<&'static str>,
    cgroup: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup_path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<Cow<'a, str>>,
    pidns: u32,
    mntns: u32,
}

pub fn write_event(out: &mut Vec<u8>, event: &Event, text: &TextFields) -> io::Result<()> {
    let raw = event.raw;
    // The text fields are ASCII or escaped valid UTF-8, so these borrow.
    let str = |bytes| String::from_utf8_lossy(bytes);
    let json = JsonEvent {
        time: str(&text.rfc3339),
        pid: raw.pid,
        tid: raw.tid,
        ppid: raw.ppid,
        uid: raw.uid,
        gid: raw.gid,
        comm: str(&text.comm),
        abi: event.abi(),
        call: event.call(),
        key: str(&text.key),
        size: raw.args.size,
        shmflg: str(&text.shmflg),
        flags: str(&text.flags),
        mode: crate::decode::mode(raw.args.shmflg),
        ret: raw.ret,
        errno: errno_name(raw.ret),
        cgroup: raw.cgroup_id,
        cgroup_path: Some(&text.cgroup_path)
            .filter(|t| !t.is_empty())
            .map(|t| str(t)),
        container: Some(&text.container)
            .filter(|t| !t.is_empty())
            .map(|t| str(t)),
        pidns: raw.pidns,
        mntns: raw.mntns,
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.push(b'\n');
    Ok(())
}
