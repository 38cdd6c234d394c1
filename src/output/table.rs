//! The default: an aligned table for people, like bcc's snoop tools. The
//! time is UTC time of day; TSV and JSON carry the full date. FLAGS, the
//! widest field, comes last so that it cannot push the others about.

use std::io::Write;

use super::TextFields;
use crate::decode::errno_name;
use crate::event::Event;
use crate::segment::Outcome;

pub fn write_header(out: &mut Vec<u8>) {
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:>7} {:>6} {:<16} {:<6} {:<6} {:<10} {:>12} {:<4} {:>9} {:<7} {:<7} {:<20} FLAGS",
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

/// ORIGIN says `SQUAT` for a segment opened with IPC_CREAT that another uid
/// created.
pub fn write_event(out: &mut Vec<u8>, event: &Event, text: &TextFields, outcome: Option<Outcome>) {
    let raw = event.raw;
    // "2026-11-26T16:26:07.123456789Z" -> "16:26:07.123456"
    let time_of_day = text.rfc3339.get(11..26).unwrap_or(&text.rfc3339);
    let text_of = |bytes| String::from_utf8_lossy(bytes);
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:>7} {:>6} {:<16} {:<6} {:<6} {:<10} {:>12} {:<4} {:>9} {:<7} {:<7} {:<20} {}",
        text_of(time_of_day),
        raw.pid,
        raw.tid,
        raw.uid,
        text_of(&text.comm),
        event.abi(),
        event.call(),
        text_of(&text.key),
        raw.args.size,
        text_of(&text.mode),
        raw.ret,
        errno_name(raw.ret).unwrap_or("-"),
        match outcome {
            Some(o) if o.squat => "SQUAT",
            Some(o) => o.origin.name(),
            None => "-",
        },
        if text.container.is_empty() {
            "-".into()
        } else {
            text_of(&text.container)
        },
        text_of(&text.flags),
    );
}
