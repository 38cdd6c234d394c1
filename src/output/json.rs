//! `--json`: one object per line, the record serialized: the TSV column
//! names as keys, in the same order. Integers are numbers except `key`,
//! `shmflg` and the addresses, which keep their hex text; `errno` is null
//! on success; fields a call does not have are left out: those of other
//! operations (`key` for a shmat), `cgroup_path` and `container` when
//! there is none, what a shmget did (`origin`, `owner_uid`, `creator_pid`,
//! `squat`) when it failed.

use std::io;

use crate::record::Record;

pub fn write_record(out: &mut Vec<u8>, record: &Record) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.push(b'\n');
    Ok(())
}
