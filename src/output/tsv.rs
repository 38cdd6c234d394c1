//! `--tsv`: a header, then one event per line, tab-separated. No field can
//! hold a tab or newline: comm is escaped, everything else is generated.
//! The bulk format: written straight into the output buffer.

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

pub fn write_event(
    out: &mut Vec<u8>,
    event: &Event,
    time: &mut TimeFormatter,
    cgroup: Option<&Cgroup>,
    outcome: Option<Outcome>,
) {
    let raw = event.raw;
    let args = &raw.args;
    time.write_rfc3339(out, event.unix_ns);
    for id in [raw.pid, raw.tid, raw.ppid, raw.uid, raw.gid] {
        out.push(b'\t');
        write_decimal(out, id);
    }
    out.push(b'\t');
    write_escaped(out, event.comm());
    for text in [event.abi(), event.call()] {
        out.push(b'\t');
        out.extend_from_slice(text.as_bytes());
    }
    // Fields of other operations are `-`.
    let cell = |out: &mut Vec<u8>, field, write: &dyn Fn(&mut Vec<u8>)| {
        out.push(b'\t');
        if event.has(field) {
            write(out)
        } else {
            out.push(b'-')
        }
    };
    cell(out, Field::Key, &|out| write_key(out, args.key));
    cell(out, Field::Size, &|out| write_decimal(out, args.size));
    cell(out, Field::Shmflg, &|out| {
        write_hex(out, args.shmflg as u32 as u64, 0)
    });
    cell(out, Field::Shmflg, &|out| {
        write_call_flags(out, event.op(), args.shmflg)
    });
    cell(out, Field::Mode, &|out| write_mode(out, mode(args.shmflg)));
    out.push(b'\t');
    write_decimal(out, raw.ret);
    out.push(b'\t');
    out.extend_from_slice(errno_name(raw.ret).unwrap_or("-").as_bytes());
    out.push(b'\t');
    write_decimal(out, raw.cgroup_id);
    out.push(b'\t');
    write_escaped_or_dash(out, cgroup.map(|c| c.path.as_str()));
    out.push(b'\t');
    write_escaped_or_dash(out, cgroup.and_then(|c| c.container.as_deref()));
    for ns in [raw.pidns, raw.mntns] {
        out.push(b'\t');
        write_decimal(out, ns);
    }
    out.push(b'\t');
    out.extend_from_slice(outcome.map_or("-", |o| o.origin.name()).as_bytes());
    for id in [
        outcome.and_then(|o| o.owner_uid),
        outcome.and_then(|o| o.creator_pid),
    ] {
        out.push(b'\t');
        match id {
            Some(id) => write_decimal(out, id),
            None => out.push(b'-'),
        }
    }
    out.push(b'\t');
    out.extend_from_slice(
        outcome
            .map_or("-", |o| if o.squat { "yes" } else { "no" })
            .as_bytes(),
    );
    out.push(b'\t');
    out.extend_from_slice(event.op().name().as_bytes());
    cell(out, Field::Shmid, &|out| write_decimal(out, args.shmid));
    cell(out, Field::Cmd, &|out| write_shmctl_cmd(out, args.cmd));
    cell(out, Field::Addr, &|out| write_hex(out, args.addr, 0));
    cell(out, Field::AttachAddr, &|out| {
        write_hex(out, raw.attach_addr, 0)
    });
    out.push(b'\n');
}

fn write_escaped_or_dash(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_escaped(out, text.as_bytes()),
        None => out.push(b'-'),
    }
}
