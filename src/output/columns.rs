//! The output columns: their names (the TSV header and the JSON keys, in
//! the same order, and the names `--columns` takes), the one text of each
//! field of a record for the text formats, and how wide the table shows
//! it. A field a call does not have is `-`.

use crate::decode::{write_decimal, write_hex};
use crate::domain::Op;
use crate::record::Record;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Time,
    Pid,
    Tid,
    Ppid,
    Uid,
    Gid,
    Comm,
    Abi,
    Call,
    Key,
    Size,
    Shmflg,
    Flags,
    Mode,
    Ret,
    Errno,
    Cgroup,
    CgroupPath,
    Container,
    Pidns,
    Mntns,
    Origin,
    OwnerUid,
    CreatorPid,
    Squat,
    Event,
    Shmid,
    Cmd,
    Addr,
    AttachAddr,
    AttachAddrFrom,
    /// The calls a line stands for: 1, or a fold's count.
    Count,
    /// A fold line's last call; `-` for one call.
    LastTime,
    Ipcns,
    HostIpc,
    Reason,
    ReasonCode,
    /// Not a field of its own: what each call names, in one text (the
    /// flags of a shmget; segment, address and flags of a shmat; the
    /// address of a shmdt; segment and command of a shmctl). The table's
    /// last column; not in the default TSV, nor in JSON.
    Details,
}

impl Column {
    /// Every column, in TSV order.
    #[rustfmt::skip]
    pub const ALL: [Column; 37] = {
        use Column::*;
        [
            Time, Pid, Tid, Ppid, Uid, Gid, Comm, Abi, Call, Key, Size, Shmflg, Flags, Mode, Ret,
            Errno, Cgroup, CgroupPath, Container, Pidns, Mntns, Origin, OwnerUid, CreatorPid,
            Squat, Event, Shmid, Cmd, Addr, AttachAddr, AttachAddrFrom, Count, LastTime, Ipcns,
            HostIpc, Reason, ReasonCode,
        ]
    };

    /// Every column `--columns` can name.
    pub const SELECTABLE: [Column; 38] = {
        let mut all = [Column::Details; 38];
        let mut i = 0;
        while i < Column::ALL.len() {
            all[i] = Column::ALL[i];
            i += 1;
        }
        all
    };

    pub fn from_name(name: &str) -> Option<Column> {
        Column::SELECTABLE.into_iter().find(|c| c.name() == name)
    }

    pub fn name(self) -> &'static str {
        use Column::*;
        match self {
            Time => "time",
            Pid => "pid",
            Tid => "tid",
            Ppid => "ppid",
            Uid => "uid",
            Gid => "gid",
            Comm => "comm",
            Abi => "abi",
            Call => "call",
            Key => "key",
            Size => "size",
            Shmflg => "shmflg",
            Flags => "flags",
            Mode => "mode",
            Ret => "ret",
            Errno => "errno",
            Cgroup => "cgroup",
            CgroupPath => "cgroup_path",
            Container => "container",
            Pidns => "pidns",
            Mntns => "mntns",
            Origin => "origin",
            OwnerUid => "owner_uid",
            CreatorPid => "creator_pid",
            Squat => "squat",
            Event => "event",
            Shmid => "shmid",
            Cmd => "cmd",
            Addr => "addr",
            AttachAddr => "attach_addr",
            AttachAddrFrom => "attach_addr_from",
            Count => "count",
            LastTime => "last_time",
            Ipcns => "ipcns",
            HostIpc => "host_ipc",
            Reason => "reason",
            ReasonCode => "reason_code",
            Details => "details",
        }
    }

    /// The table's width for this column (the header may be wider), and
    /// whether it is right-aligned (numbers). Values that do not fit are
    /// cut with a marker, except in `--wide`; `details` takes what is left
    /// of the line. The time's width depends on its form (see `table`).
    pub fn table_width(self) -> (usize, bool) {
        use Column::*;
        match self {
            Time => (8, false),
            Pid | Tid | Ppid => (7, true),
            Uid | Gid => (6, true),
            Comm => (15, false),
            Abi | Errno | Event => (6, false),
            Call | Key | Shmflg => (10, false),
            Size | Cgroup | Pidns | Mntns | Ipcns | Shmid => (10, true),
            Flags | Container => (20, false),
            Mode => (4, false),
            // A shmat's address: 0x and 12 digits.
            Ret => (14, true),
            Addr | AttachAddr => (14, false),
            CgroupPath => (30, false),
            Origin => (7, false),
            OwnerUid => (9, true),
            CreatorPid => (11, true),
            Squat => (5, false),
            Cmd => (15, false),
            AttachAddrFrom => (16, false),
            Count => (8, true),
            LastTime => (8, false),
            HostIpc => (8, false),
            ReasonCode => (13, false),
            Reason => (40, false),
            Details => (0, false),
        }
    }

    /// Whether the column can change between records that are the same
    /// in every field but the time (and so is written anew on each line).
    pub fn per_line(self) -> bool {
        matches!(self, Column::Time | Column::Count | Column::LastTime)
    }

    /// Appends this column's text for `record`.
    pub fn write(self, record: &Record, out: &mut Vec<u8>) {
        use Column::*;
        let r = record;
        match self {
            Time => text(out, Some(r.time)),
            Pid => write_decimal(out, r.pid),
            Tid => write_decimal(out, r.tid),
            Ppid => write_decimal(out, r.ppid),
            Uid => write_decimal(out, r.uid),
            Gid => write_decimal(out, r.gid),
            Comm => text(out, Some(r.comm)),
            Abi => text(out, Some(r.abi.name())),
            Call => text(out, Some(r.call)),
            Key => optional(out, r.key, |out, key| key.write(out)),
            Size => optional(out, r.size, write_decimal),
            Shmflg => optional(out, r.shmflg, |out, hex| hex.write(out)),
            Flags => text(out, r.flags),
            Mode => optional(out, r.mode, |out, mode| mode.write(out)),
            Ret if r.ret_is_address => write_hex(out, r.ret as u64, 0),
            Ret => write_decimal(out, r.ret),
            Errno => text(out, r.errno),
            Cgroup => write_decimal(out, r.cgroup),
            CgroupPath => text(out, r.cgroup_path),
            Container => text(out, r.container),
            Pidns => write_decimal(out, r.pidns),
            Mntns => write_decimal(out, r.mntns),
            Origin => text(out, r.origin),
            OwnerUid => optional(out, r.owner_uid, write_decimal),
            CreatorPid => optional(out, r.creator_pid, write_decimal),
            Squat => text(out, r.squat.map(|s| if s { "yes" } else { "no" })),
            Event => text(out, Some(r.op.name())),
            Shmid => optional(out, r.shmid, write_decimal),
            Cmd => text(out, r.cmd),
            Addr => optional(out, r.addr, |out, hex| hex.write(out)),
            AttachAddr => optional(out, r.attach_addr, |out, hex| hex.write(out)),
            AttachAddrFrom => text(out, r.attach_addr_from),
            Count => write_decimal(out, r.count),
            LastTime => text(out, r.last_time),
            Ipcns => write_decimal(out, r.ipcns),
            HostIpc => text(out, r.host_ipc.map(|s| if s { "yes" } else { "no" })),
            Reason => text(out, r.reason),
            ReasonCode => text(out, r.reason_code),
            Details => write_details(r, out),
        }
    }

    /// The table's text of this column: the same as `write`, but where a
    /// table cell says more than the field: CALL is `ipc:shmat` for an
    /// ipc() call, ORIGIN says `SQUAT` for a squatted segment, CONTAINER
    /// ends with `HOST-IPC` for a container in the host's ipc namespace.
    pub fn write_cell(self, record: &Record, out: &mut Vec<u8>) {
        match self {
            Column::Call if record.call != record.op.name() => {
                out.extend_from_slice(record.call.as_bytes());
                out.push(b':');
                out.extend_from_slice(record.op.name().as_bytes());
            }
            Column::Origin if record.squat == Some(true) => out.extend_from_slice(b"SQUAT"),
            Column::Container if record.host_ipc == Some(true) => {
                self.write(record, out);
                out.extend_from_slice(b" HOST-IPC");
            }
            // A fold line says how many calls it stands for first.
            Column::Details if record.count > 1 => {
                out.push(b'x');
                write_decimal(out, record.count);
                out.push(b' ');
                self.write(record, out);
            }
            Column::Count => {
                out.push(b'x');
                write_decimal(out, record.count);
            }
            _ => self.write(record, out),
        }
    }
}

/// `details`: the reason of a failed call first (the table shows it after
/// the errno), then the flags of a shmget; `shmid=65581 addr=0x0
/// SHM_RDONLY -> 0x7f16d4bd1000` for a shmat (with how sure the address
/// is); `addr=...` for a shmdt; `shmid=65581 IPC_RMID` for a shmctl.
fn write_details(r: &Record, out: &mut Vec<u8>) {
    if let Some(reason) = r.reason {
        out.extend_from_slice(reason.as_bytes());
        let start = out.len();
        out.extend_from_slice(b"; ");
        write_call_details(r, out);
        if out[start..] == *b"; -" {
            out.truncate(start);
        }
        return;
    }
    write_call_details(r, out);
}

fn write_call_details(r: &Record, out: &mut Vec<u8>) {
    use Column::*;
    match r.op {
        Op::Shmget => Flags.write(r, out),
        Op::Shmat => {
            out.extend_from_slice(b"shmid=");
            Shmid.write(r, out);
            out.extend_from_slice(b" addr=");
            Addr.write(r, out);
            out.push(b' ');
            Flags.write(r, out);
            out.extend_from_slice(b" -> ");
            match r.attach_addr_from {
                Some("unknown") => out.extend_from_slice(b"attached, address not returned"),
                Some(from) => {
                    AttachAddr.write(r, out);
                    if r.ret < 0 {
                        out.extend_from_slice(b" attached, address not returned");
                    }
                    if from == "user" {
                        out.extend_from_slice(b" (read from user memory)");
                    }
                }
                None => out.push(b'-'),
            }
        }
        Op::Shmdt => {
            out.extend_from_slice(b"addr=");
            Addr.write(r, out);
        }
        Op::Shmctl => {
            out.extend_from_slice(b"shmid=");
            Shmid.write(r, out);
            out.push(b' ');
            Cmd.write(r, out);
        }
    }
}

/// Text fields of a record are escaped already (see `record`).
fn text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => out.extend_from_slice(value.as_bytes()),
        None => out.push(b'-'),
    }
}

fn optional<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(value) => write(out, value),
        None => out.push(b'-'),
    }
}
