//! The default: an aligned table for people, like bcc's snoop tools. The
//! time is UTC time of day; TSV and JSON carry the full date. DETAILS, the
//! widest field, comes last so that it cannot push the others about: the
//! flags of a shmget, and what the other calls name (segment id, address,
//! command).

use std::borrow::Cow;
use std::io::Write;

use super::TextFields;
use crate::decode::errno_name;
use crate::domain::Op;
use crate::event::{Event, Field};
use crate::segment::Outcome;

pub fn write_header(out: &mut Vec<u8>) {
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:>7} {:>6} {:<16} {:<6} {:<10} {:<10} {:>12} {:<4} {:>15} {:<7} {:<7} {:<20} DETAILS",
        "TIME(UTC)",
        "PID",
        "TID",
        "UID",
        "COMM",
        "ABI",
        "CALL",
        "KEY",
        "SIZE",
        "MODE",
        "RET",
        "ERRNO",
        "ORIGIN",
        "CONTAINER"
    );
}

/// CALL is `ipc:shmat` for an ipc() call. ORIGIN says `SQUAT` for a segment
/// opened with IPC_CREAT that another uid created.
pub fn write_event(out: &mut Vec<u8>, event: &Event, text: &TextFields, outcome: Option<Outcome>) {
    let raw = event.raw;
    // "2026-11-26T16:26:07.123456789Z" -> "16:26:07.123456"
    let time_of_day = text.rfc3339.get(11..26).unwrap_or(&text.rfc3339);
    fn text_of(bytes: &[u8]) -> Cow<'_, str> {
        if bytes.is_empty() {
            "-".into()
        } else {
            String::from_utf8_lossy(bytes)
        }
    }
    let call: Cow<str> = if event.call() == event.op().name() {
        event.call().into()
    } else {
        format!("{}:{}", event.call(), event.op().name()).into()
    };
    let size: Cow<str> = if event.has(Field::Size) {
        raw.args.size.to_string().into()
    } else {
        "-".into()
    };
    let details = match event.op() {
        Op::Shmget => text_of(&text.flags).into_owned(),
        Op::Shmat => format!(
            "shmid={} addr={} {} -> {}",
            raw.args.shmid,
            text_of(&text.addr),
            text_of(&text.flags),
            text_of(&text.attach_addr)
        ),
        Op::Shmdt => format!("addr={}", text_of(&text.addr)),
        Op::Shmctl => format!("shmid={} {}", raw.args.shmid, text_of(&text.cmd)),
    };
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:>7} {:>6} {:<16} {:<6} {:<10} {:<10} {:>12} {:<4} {:>15} {:<7} {:<7} {:<20} {}",
        text_of(time_of_day),
        raw.pid,
        raw.tid,
        raw.uid,
        text_of(&text.comm),
        event.abi(),
        call,
        text_of(&text.key),
        size,
        text_of(&text.mode),
        raw.ret,
        errno_name(raw.ret).unwrap_or("-"),
        match outcome {
            Some(o) if o.squat => "SQUAT",
            Some(o) => o.origin.name(),
            None => "-",
        },
        text_of(&text.container),
        details,
    );
}
