//! `--tsv`: a header, then one event per line, tab-separated. No field can
//! hold a tab or newline: comm is escaped, everything else is generated.

use super::TextFields;
use crate::decode::{errno_name, write_decimal};
use crate::event::Event;

pub const COLUMNS: [&str; 17] = [
    "time", "pid", "tid", "ppid", "uid", "gid", "comm", "abi", "call", "key", "size", "shmflg",
    "flags", "mode", "ret", "errno", "cgroup",
];

pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(COLUMNS.join("\t").as_bytes());
    out.push(b'\n');
}

pub fn write_event(out: &mut Vec<u8>, event: &Event, text: &TextFields) {
    let raw = event.raw;
    let tab = |out: &mut Vec<u8>| out.push(b'\t');
    out.extend_from_slice(&text.rfc3339);
    for id in [raw.pid, raw.tid, raw.ppid, raw.uid, raw.gid] {
        tab(out);
        write_decimal(out, id);
    }
    tab(out);
    out.extend_from_slice(&text.comm);
    tab(out);
    out.extend_from_slice(event.abi().as_bytes());
    tab(out);
    out.extend_from_slice(event.call().as_bytes());
    tab(out);
    out.extend_from_slice(&text.key);
    tab(out);
    write_decimal(out, raw.args.size);
    tab(out);
    out.extend_from_slice(&text.shmflg);
    tab(out);
    out.extend_from_slice(&text.flags);
    tab(out);
    out.extend_from_slice(&text.mode);
    tab(out);
    write_decimal(out, raw.ret);
    tab(out);
    out.extend_from_slice(errno_name(raw.ret).unwrap_or("-").as_bytes());
    tab(out);
    write_decimal(out, raw.cgroup_id);
    out.push(b'\n');
}
