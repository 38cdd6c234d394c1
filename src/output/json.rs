//! `--json`: one object per line, the TSV column names as keys. Integers are
//! numbers except `key` and `shmflg`, which keep their hex text; `errno` is
//! null on success; fields that do not apply are left out: `cgroup_path`
//! and `container` when there is none, what the call did (`origin`,
//! `owner_uid`, `creator_pid`, `squat`) when it failed.

use std::borrow::Cow;
use std::io;

use serde::Serialize;

use super::TextFields;
use crate::decode::errno_name;
use crate::event::Event;
use crate::segment::Outcome;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creator_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    squat: Option<bool>,
}

pub fn write_event(
    out: &mut Vec<u8>,
    event: &Event,
    text: &TextFields,
    outcome: Option<Outcome>,
) -> io::Result<()> {
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
        origin: outcome.map(|o| o.origin.name()),
        owner_uid: outcome.and_then(|o| o.owner_uid),
        creator_pid: outcome.and_then(|o| o.creator_pid),
        squat: outcome.map(|o| o.squat),
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.push(b'\n');
    Ok(())
}
