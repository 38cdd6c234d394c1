//! `--json`: one object per line, the TSV column names as keys. Integers are
//! numbers except `key`, `shmflg` and the addresses, which keep their hex
//! text; `errno` is null on success; fields that do not apply are left out:
//! those of other operations (`key` for a shmat), `cgroup_path` and
//! `container` when there is none, what a shmget did (`origin`,
//! `owner_uid`, `creator_pid`, `squat`) when it failed.

use std::borrow::Cow;
use std::io;

use serde::Serialize;

use super::TextFields;
use crate::decode::errno_name;
use crate::event::{Event, Field};
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
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shmflg: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
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
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shmid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attach_addr: Option<Cow<'a, str>>,
}

pub fn write_event<'a>(
    out: &mut Vec<u8>,
    event: &Event,
    text: &'a TextFields,
    outcome: Option<Outcome>,
) -> io::Result<()> {
    let raw = event.raw;
    // The text fields are ASCII or escaped valid UTF-8, so these borrow.
    let str = |bytes| String::from_utf8_lossy(bytes);
    let text_of = |bytes: &'a Vec<u8>| Some(bytes).filter(|t| !t.is_empty()).map(|t| str(t));
    let has = |field| event.has(field);
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
        key: text_of(&text.key),
        size: has(Field::Size).then_some(raw.args.size),
        shmflg: text_of(&text.shmflg),
        flags: text_of(&text.flags),
        mode: has(Field::Mode).then(|| crate::decode::mode(raw.args.shmflg)),
        ret: raw.ret,
        errno: errno_name(raw.ret),
        cgroup: raw.cgroup_id,
        cgroup_path: text_of(&text.cgroup_path),
        container: text_of(&text.container),
        pidns: raw.pidns,
        mntns: raw.mntns,
        origin: outcome.map(|o| o.origin.name()),
        owner_uid: outcome.and_then(|o| o.owner_uid),
        creator_pid: outcome.and_then(|o| o.creator_pid),
        squat: outcome.map(|o| o.squat),
        event: event.op().name(),
        shmid: has(Field::Shmid).then_some(raw.args.shmid),
        cmd: text_of(&text.cmd),
        addr: text_of(&text.addr),
        attach_addr: text_of(&text.attach_addr),
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.push(b'\n');
    Ok(())
}
