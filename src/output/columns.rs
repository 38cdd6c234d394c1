//! The output columns: their names (the TSV header and the JSON keys, in
//! the same order) and the one text of each field of a record, for the
//! text formats. A field a call does not have is `-`.

use crate::decode::write_decimal;
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
}

impl Column {
    /// Every column, in TSV order.
    #[rustfmt::skip]
    pub const ALL: [Column; 31] = {
        use Column::*;
        [
            Time, Pid, Tid, Ppid, Uid, Gid, Comm, Abi, Call, Key, Size, Shmflg, Flags, Mode, Ret,
            Errno, Cgroup, CgroupPath, Container, Pidns, Mntns, Origin, OwnerUid, CreatorPid,
            Squat, Event, Shmid, Cmd, Addr, AttachAddr, AttachAddrFrom,
        ]
    };

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
        }
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
