//! `--tsv`: a header, then one event per line, tab-separated. No field can
//! hold a tab or newline: comm and cgroup paths are escaped, everything else
//! is generated. The bulk format: written straight into the output buffer.

use crate::cgroup::Cgroup;
use crate::decode::{
    errno_name, mode, write_call_flags, write_decimal, write_escaped, write_hex, write_key,
    write_mode, write_shmctl_cmd, TimeFormatter,
};
use crate::event::{Event, Field};
use crate::segment::Outcome;

#[rustfmt::skip]
pub const COLUMNS: [&str; 30] = [
    "time", "pid", "tid", "ppid", "uid", "gid", "comm", "abi", "call", "key", "size", "shmflg",
    "flags", "mode", "ret", "errno", "cgroup", "cgroup_path", "container", "pidns", "mntns",
    "origin", "owner_uid", "creator_pid", "squat", "event", "shmid", "cmd", "addr",
    "attach_addr",
];

pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(COLUMNS.join("\t").as_bytes());
    out.push(b'\n');
}

/// Columns that stay the same from one event to the next of the same
/// thread, rendered once and copied while they do: a flood comes from few
/// threads, and rendering them anew was most of the cost of a line.
#[derive(Default)]
struct Rendered<K> {
    key: Option<K>,
    text: Vec<u8>,
}

impl<K: PartialEq> Rendered<K> {
    fn get(&mut self, key: K, render: impl FnOnce(&mut Vec<u8>)) -> &[u8] {
        if self.key.as_ref() != Some(&key) {
            self.text.clear();
            render(&mut self.text);
            self.key = Some(key);
        }
        &self.text
    }
}

/// Everything the BPF side says of a call's arguments.
type CallKey = (u32, u32, u32, i32, u64, i32, i32, i32, u64);

#[derive(Default)]
pub struct TsvWriter {
    time: TimeFormatter,
    /// pid, tid, ppid, uid, gid, comm
    who: Rendered<([u32; 5], [i8; 16])>,
    /// abi, call, key, size, shmflg, flags, mode, ret, errno
    call: Rendered<(CallKey, i64)>,
    /// cgroup, cgroup_path, container, pidns, mntns
    place: Rendered<(u64, u32, u32)>,
    /// origin, owner_uid, creator_pid, squat, event, shmid, cmd, addr,
    /// attach_addr
    result: Rendered<(CallKey, Option<Outcome>, u64)>,
}

impl TsvWriter {
    pub fn write_event(
        &mut self,
        out: &mut Vec<u8>,
        event: &Event,
        cgroup: Option<&Cgroup>,
        outcome: Option<Outcome>,
    ) {
        let raw = event.raw;
        let args = &raw.args;
        let call_key: CallKey = (
            args.abi.0,
            args.call.0,
            args.op.0,
            args.key,
            args.size,
            args.shmflg,
            args.shmid,
            args.cmd,
            args.addr,
        );
        self.time.write_rfc3339(out, event.unix_ns);
        let ids = [raw.pid, raw.tid, raw.ppid, raw.uid, raw.gid];
        out.extend_from_slice(self.who.get((ids, raw.comm), |text| {
            for id in ids {
                text.push(b'\t');
                write_decimal(text, id);
            }
            text.push(b'\t');
            write_escaped(text, event.comm());
        }));
        out.extend_from_slice(
            self.call
                .get((call_key, raw.ret), |text| write_call(text, event)),
        );
        out.extend_from_slice(
            self.place
                .get((raw.cgroup_id, raw.pidns, raw.mntns), |text| {
                    text.push(b'\t');
                    write_decimal(text, raw.cgroup_id);
                    text.push(b'\t');
                    write_escaped_or_dash(text, cgroup.map(|c| c.path.as_str()));
                    text.push(b'\t');
                    write_escaped_or_dash(text, cgroup.and_then(|c| c.container.as_deref()));
                    for ns in [raw.pidns, raw.mntns] {
                        text.push(b'\t');
                        write_decimal(text, ns);
                    }
                }),
        );
        out.extend_from_slice(
            self.result
                .get((call_key, outcome, raw.attach_addr), |text| {
                    write_result(text, event, outcome)
                }),
        );
        out.push(b'\n');
    }
}

/// Fields of other operations are `-`.
macro_rules! cell {
    ($out:expr, $event:expr, $field:expr, $write:expr) => {{
        $out.push(b'\t');
        if $event.has($field) {
            $write
        } else {
            $out.push(b'-')
        }
    }};
}

/// abi, call, key, size, shmflg, flags, mode, ret, errno
fn write_call(out: &mut Vec<u8>, event: &Event) {
    let (raw, args) = (event.raw, &event.raw.args);
    for text in [event.abi(), event.call()] {
        out.push(b'\t');
        out.extend_from_slice(text.as_bytes());
    }
    cell!(out, event, Field::Key, write_key(out, args.key));
    cell!(out, event, Field::Size, write_decimal(out, args.size));
    cell!(
        out,
        event,
        Field::Shmflg,
        write_hex(out, args.shmflg as u32 as u64, 0)
    );
    cell!(
        out,
        event,
        Field::Shmflg,
        write_call_flags(out, event.op(), args.shmflg)
    );
    cell!(out, event, Field::Mode, write_mode(out, mode(args.shmflg)));
    out.push(b'\t');
    write_decimal(out, raw.ret);
    out.push(b'\t');
    out.extend_from_slice(errno_name(raw.ret).unwrap_or("-").as_bytes());
}

/// origin, owner_uid, creator_pid, squat, event, shmid, cmd, addr,
/// attach_addr
fn write_result(out: &mut Vec<u8>, event: &Event, outcome: Option<Outcome>) {
    let (raw, args) = (event.raw, &event.raw.args);
    match outcome {
        None => out.extend_from_slice(b"\t-\t-\t-\t-"),
        Some(outcome) => {
            out.push(b'\t');
            out.extend_from_slice(outcome.origin.name().as_bytes());
            for id in [outcome.owner_uid, outcome.creator_pid] {
                out.push(b'\t');
                match id {
                    Some(id) => write_decimal(out, id),
                    None => out.push(b'-'),
                }
            }
            out.extend_from_slice(if outcome.squat { b"\tyes" } else { b"\tno" });
        }
    }
    out.push(b'\t');
    out.extend_from_slice(event.op().name().as_bytes());
    cell!(out, event, Field::Shmid, write_decimal(out, args.shmid));
    cell!(out, event, Field::Cmd, write_shmctl_cmd(out, args.cmd));
    cell!(out, event, Field::Addr, write_hex(out, args.addr, 0));
    cell!(
        out,
        event,
        Field::AttachAddr,
        write_hex(out, raw.attach_addr, 0)
    );
}

fn write_escaped_or_dash(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_escaped(out, text.as_bytes()),
        None => out.push(b'-'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RawEvent;

    fn line(writer: &mut TsvWriter, raw: &RawEvent) -> Vec<String> {
        let mut out = vec![];
        writer.write_event(&mut out, &Event { raw, unix_ns: 0 }, None, None);
        String::from_utf8(out)
            .unwrap()
            .trim_end()
            .split('\t')
            .map(str::to_string)
            .collect()
    }

    /// The remembered columns follow every field they are made of.
    #[test]
    fn remembered_columns_follow_their_fields() {
        let mut writer = TsvWriter::default();
        let mut raw = RawEvent {
            pid: 10,
            ret: -2,
            ..Default::default()
        };
        let first = line(&mut writer, &raw);
        assert_eq!(first.len(), COLUMNS.len());
        assert_eq!(
            (first[1].as_str(), first[14].as_str(), first[15].as_str()),
            ("10", "-2", "ENOENT")
        );
        raw.comm[0] = b'x' as i8;
        raw.pid = 11;
        raw.ret = 7;
        raw.args.key = 0x1234;
        raw.pidns = 5;
        let second = line(&mut writer, &raw);
        assert_eq!(second[1], "11");
        assert_eq!(second[6], "x");
        assert_eq!(second[9], "0x00001234");
        assert_eq!((second[14].as_str(), second[15].as_str()), ("7", "-"));
        assert_eq!(second[19], "5");
        assert_eq!(line(&mut writer, &raw), second);
    }
}
