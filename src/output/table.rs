//! The default: an aligned table for people, like bcc's snoop tools. The
//! time is UTC time of day; TSV and JSON carry the full date. DETAILS, the
//! widest field, comes last so that it cannot push the others about: the
//! flags of a shmget, and what the other calls name (segment id, address,
//! command).

use std::io::Write;

use super::columns::Column;
use crate::domain::Op;
use crate::record::Record;

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
pub fn write_record(out: &mut Vec<u8>, record: &Record) {
    let cell = |column: Column| {
        let mut text = Vec::with_capacity(32);
        column.write(record, &mut text);
        String::from_utf8(text).unwrap_or_default()
    };
    // "2026-11-26T16:26:07.123456789Z" -> "16:26:07.123456"
    let time_of_day = record.time.get(11..26).unwrap_or(record.time);
    let call = if record.call == record.op.name() {
        record.call.to_string()
    } else {
        format!("{}:{}", record.call, record.op.name())
    };
    let details = match record.op {
        Op::Shmget => cell(Column::Flags),
        Op::Shmat => {
            // Where it attached, and how sure that is.
            let attached = match (record.attach_addr_from, record.ret < 0) {
                (Some("unknown"), _) => "attached, address not returned".to_string(),
                (Some(from), failed) => format!(
                    "{}{}{}",
                    cell(Column::AttachAddr),
                    if failed {
                        " attached, address not returned"
                    } else {
                        ""
                    },
                    if from == "user" {
                        " (read from user memory)"
                    } else {
                        ""
                    }
                ),
                (None, _) => "-".to_string(),
            };
            format!(
                "shmid={} addr={} {} -> {}",
                cell(Column::Shmid),
                cell(Column::Addr),
                cell(Column::Flags),
                attached
            )
        }
        Op::Shmdt => format!("addr={}", cell(Column::Addr)),
        Op::Shmctl => format!("shmid={} {}", cell(Column::Shmid), cell(Column::Cmd)),
    };
    let origin = if record.squat == Some(true) {
        "SQUAT".to_string()
    } else {
        cell(Column::Origin)
    };
    let _ = writeln!(
        out,
        "{:<15} {:>7} {:>7} {:>6} {:<16} {:<6} {:<10} {:<10} {:>12} {:<4} {:>15} {:<7} {:<7} {:<20} {}",
        time_of_day,
        record.pid,
        record.tid,
        record.uid,
        record.comm,
        record.abi.name(),
        call,
        cell(Column::Key),
        cell(Column::Size),
        cell(Column::Mode),
        record.ret,
        cell(Column::Errno),
        origin,
        cell(Column::Container),
        details,
    );
}
