//! Writing records to stdout as a table, TSV or JSON lines, with a flush
//! policy fit for both terminals and pipes. Each format is a thin writer
//! over the decoded record (`crate::record`).

pub mod columns;
mod json;
mod table;
mod tsv;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::cli::Format;
use crate::decode::TimeMode;
use crate::record::Record;
use columns::Column;

/// Output to a file or pipe is written in blocks, but never held longer
/// than this while events flow (checked between ring-buffer batches).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const BUFFER_SIZE: usize = 64 * 1024;

pub fn is_terminal(file: &File) -> bool {
    nix::unistd::isatty(file.as_fd()).unwrap_or(false)
}

/// What the output looks like, as the options say.
pub struct Layout {
    pub format: Format,
    /// `--columns`, for the table and TSV.
    pub columns: Option<Vec<Column>>,
    /// The table's `--wide`.
    pub wide: bool,
    pub time: TimeMode,
    pub header: bool,
}

/// The width the table must fit in: `COLUMNS` where set (as clap and ps
/// take it), else the terminal's, when the output is one; else none.
pub fn terminal_width(file: &File) -> Option<usize> {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    from_env.or_else(|| {
        let (terminal_size::Width(width), _) = terminal_size::terminal_size_of(file.as_fd())?;
        Some(usize::from(width)).filter(|&w| w > 0)
    })
}

enum Writer {
    Table(table::Table),
    Tsv(tsv::TsvWriter),
    Json,
}

pub struct Output {
    writer: Writer,
    file: File,
    /// Formatted records not yet written; records are formatted straight
    /// into it.
    pending: Vec<u8>,
    /// Records in `pending`, and records written out or dropped by a
    /// failed write.
    pending_records: u64,
    /// The fold lines in `pending` (their index among its records, and
    /// the calls each stands for): the counts are of calls.
    pending_folds: Vec<(u64, u64)>,
    written: u64,
    unwritten: u64,
    /// A terminal sees each event at once; anything else gets blocks.
    interactive: bool,
    last_flush: Instant,
}

impl Output {
    /// A duplicate of stdout's descriptor, bypassing std's own line
    /// buffering of `Stdout`.
    pub fn stdout_file() -> io::Result<File> {
        Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
    }

    /// Writes to `file` as `layout` says. The header waits for the first
    /// flush.
    pub fn new(file: File, layout: Layout) -> Output {
        let columns = layout.columns.as_deref();
        let writer = match layout.format {
            Format::Table => Writer::Table(table::Table::new(
                columns,
                layout.wide,
                layout.time,
                terminal_width(&file),
            )),
            Format::Tsv => Writer::Tsv(tsv::TsvWriter::new(columns)),
            Format::Json => Writer::Json,
        };
        let mut output = Output {
            writer,
            pending: Vec::with_capacity(BUFFER_SIZE + 4096),
            pending_records: 0,
            pending_folds: Vec::new(),
            written: 0,
            unwritten: 0,
            interactive: is_terminal(&file),
            last_flush: Instant::now(),
            file,
        };
        if layout.header {
            match &output.writer {
                Writer::Table(table) => table.write_header(&mut output.pending),
                Writer::Tsv(tsv) => tsv.write_header(&mut output.pending),
                Writer::Json => {}
            }
        }
        output
    }

    /// Whether each record is written at once (a terminal).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    pub fn write_record(&mut self, record: &Record) -> io::Result<()> {
        match &mut self.writer {
            Writer::Tsv(tsv) => tsv.write_record(&mut self.pending, record),
            Writer::Table(table) => table.write_record(&mut self.pending, record),
            Writer::Json => json::write_record(&mut self.pending, record)?,
        }
        if record.count != 1 {
            self.pending_folds
                .push((self.pending_records, record.count));
        }
        self.pending_records += 1;
        if self.interactive || self.pending.len() >= BUFFER_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    /// Called between batches: pushes out what has waited long enough.
    pub fn flush_if_due(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() && self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out what waits. On failure, the records whose lines were
    /// written whole count as written, the rest as unwritten.
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        let mut done = 0;
        let result = loop {
            match self.file.write(&self.pending[done..]) {
                Ok(0) if done < self.pending.len() => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if done + n < self.pending.len() => done += n,
                Ok(_) => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let whole = match result {
            Ok(()) => self.pending_records,
            // Records end with a newline; a header line is no record.
            Err(_) => (self.pending[..done].iter().filter(|&&b| b == b'\n').count() as u64)
                .min(self.pending_records),
        };
        let calls = self.calls_in(self.pending_records);
        let written = self.calls_in(whole);
        self.written += written;
        self.unwritten += calls - written;
        self.pending.clear();
        self.pending_records = 0;
        self.pending_folds.clear();
        result
    }

    /// Calls the first `records` pending records stand for.
    fn calls_in(&self, records: u64) -> u64 {
        let folded: u64 = self
            .pending_folds
            .iter()
            .filter(|(index, _)| *index < records)
            .map(|(_, count)| count - 1)
            .sum();
        records + folded
    }

    /// Calls whose records were written out whole (a fold line stands for
    /// its count).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Calls whose records were dropped by a failed write, or still wait.
    pub fn unwritten(&self) -> u64 {
        self.unwritten + self.calls_in(self.pending_records)
    }
}

#[cfg(test)]
mod tests {
    use super::columns::Column;
    use super::*;
    use crate::cgroup::CgroupPaths;
    use crate::decode::TimeMode;
    use crate::event::{bytes_of, RawEvent};
    use crate::record::Decoder;
    use crate::skel::types::{attach_addr_source, shm_abi, shm_call, shm_op};
    use serde_json::Value;

    /// Raw events of each kind: a created segment, a failed open, an
    /// ipc(SHMAT), a shmdt and a shmctl, from a thread with a hostile name.
    fn raw_events() -> Vec<RawEvent> {
        let mut base = RawEvent {
            boot_ns: 1_000_000_123,
            pid: 4321,
            tid: 4322,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            pidns: 4026531836,
            mntns: 4026531841,
            cgroup_id: own_cgroup_id(),
            newest_idx: -1,
            ..Default::default()
        };
        for (slot, byte) in base.comm.iter_mut().zip(b"a\tb\nc\x1b[31m\\") {
            *slot = *byte as i8;
        }
        let mut created = base;
        created.args.op = shm_op::OP_SHMGET;
        created.args.key = 0x1234;
        created.args.size = 4096;
        created.args.shmflg = 0o3640;
        created.ret = 32769;
        let mut missing = created;
        missing.args.shmflg = 0;
        missing.ret = -2;
        let mut attach = base;
        attach.args.op = shm_op::OP_SHMAT;
        attach.args.abi = shm_abi::ABI_IA32;
        attach.args.call = shm_call::CALL_IPC;
        attach.args.shmid = 32769;
        attach.args.shmflg = 0o10000;
        attach.attach_addr = 0xf7f0_0000;
        attach.attach_addr_from = attach_addr_source::ADDR_KERNEL;
        let mut detach = base;
        detach.args.op = shm_op::OP_SHMDT;
        detach.args.addr = 0xf7f0_0000;
        let mut control = base;
        control.args.op = shm_op::OP_SHMCTL;
        control.args.shmid = 32769;
        control.args.cmd = 0x102;
        let mut direct_attach = attach;
        direct_attach.args.abi = shm_abi::ABI_X86_64;
        direct_attach.args.call = shm_call::CALL_DIRECT;
        direct_attach.attach_addr = 0x7f16_d4bd_1000;
        direct_attach.ret = 0x7f16_d4bd_1000;
        vec![created, missing, attach, detach, control, direct_attach]
    }

    fn own_cgroup_id() -> u64 {
        use std::os::unix::fs::MetadataExt;
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mount = mountinfo.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split(' ').nth(4))?
        });
        let path = own.lines().find_map(|l| l.strip_prefix("0::"));
        match (mount, path) {
            (Some(mount), Some(path)) => std::fs::metadata(format!("{mount}{path}"))
                .map(|m| m.ino())
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// TSV's cell, JSON's value and the table's cell are one text for every
    /// field of every kind of record: each is written by the record's one
    /// renderer of that field.
    #[test]
    fn every_format_holds_the_same_text() {
        let mut decoder = Decoder::new(CgroupPaths::new(), TimeMode::Utc);
        // Wide: no value is cut.
        let wide = table::Table::new(None, true, TimeMode::Utc, None);
        for raw in raw_events() {
            let record = decoder
                .decode(&bytes_of(&raw, None))
                .expect("a known event");
            let mut tsv = vec![];
            tsv::TsvWriter::new(None).write_record(&mut tsv, &record);
            let mut json = vec![];
            json::write_record(&mut json, &record).unwrap();
            let mut table = vec![];
            wide.write_record(&mut table, &record);
            let tsv = String::from_utf8(tsv).unwrap();
            let table = String::from_utf8(table).unwrap();
            assert_eq!(tsv.matches('\n').count(), 1, "{tsv:?}");
            assert_eq!(table.matches('\n').count(), 1, "{table:?}");
            let cells: Vec<&str> = tsv.trim_end_matches('\n').split('\t').collect();
            let json: Value = serde_json::from_slice(&json).unwrap();
            let object = json.as_object().unwrap();
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            let present: Vec<&str> = names.iter().copied().filter(|n| keys.contains(n)).collect();
            assert_eq!(keys, present, "JSON keys in column order");
            assert_eq!(cells.len(), Column::ALL.len(), "{tsv:?}");
            for (column, cell) in Column::ALL.iter().zip(&cells) {
                let expected = match (column, &json[column.name()]) {
                    (_, Value::Null) => "-".to_string(),
                    (Column::Mode, Value::Number(n)) => format!("0{:03o}", n.as_u64().unwrap()),
                    // A shmat's address: hex in text, a number in JSON.
                    (Column::Ret, Value::Number(n)) if record.ret_is_address => {
                        format!("{:#x}", n.as_u64().unwrap())
                    }
                    (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
                    (_, Value::String(s)) => s.clone(),
                    (_, other) => other.to_string(),
                };
                assert_eq!(*cell, expected, "{}: {tsv:?} vs {json}", column.name());
            }
            for column in [
                Column::Comm,
                Column::Key,
                Column::Ret,
                Column::Errno,
                Column::Container,
            ] {
                let cell = cells[Column::ALL.iter().position(|c| *c == column).unwrap()];
                assert!(table.contains(cell), "table lacks {cell:?}: {table:?}");
            }
            assert!(!table.bytes().any(|b| b < b' ' && b != b'\n'), "{table:?}");
            assert_eq!(cells[6], "a\\x09b\\x0ac\\x1b[31m\\\\");
        }
    }

    /// TSV reuses a line's text only while every field but the time
    /// repeats: any field that changes shows at once.
    #[test]
    fn tsv_text_follows_every_field() {
        let mut decoder = Decoder::new(CgroupPaths::new(), TimeMode::Utc);
        let mut writer = tsv::TsvWriter::new(None);
        let mut line = |raw: &RawEvent| {
            let record = decoder.decode(&bytes_of(raw, None)).unwrap();
            let generation = record.generation;
            let mut out = vec![];
            writer.write_record(&mut out, &record);
            (generation, String::from_utf8(out).unwrap())
        };
        let first = raw_events()[1];
        let (generation, text) = line(&first);
        let mut later = first;
        later.boot_ns += 1_000;
        let (same_generation, same_text) = line(&later);
        assert_eq!(same_generation, generation);
        assert_eq!(
            same_text.split_once('\t').unwrap().1,
            text.split_once('\t').unwrap().1
        );
        assert_ne!(same_text, text, "the time still changes");
        for change in [
            |r: &mut RawEvent| r.args.key += 1,
            |r: &mut RawEvent| r.tid += 1,
            |r: &mut RawEvent| r.comm[0] = b'z' as i8,
            |r: &mut RawEvent| r.ret = -13,
            |r: &mut RawEvent| r.cgroup_id = u64::MAX,
            |r: &mut RawEvent| r.mntns += 1,
        ] {
            let mut changed = later;
            change(&mut changed);
            let (new_generation, new_text) = line(&changed);
            assert_ne!(new_generation, generation);
            let mut json = vec![];
            json::write_record(&mut json, &decoder_record(&changed)).unwrap();
            let json: Value = serde_json::from_slice(&json).unwrap();
            let cells = new_text.trim_end().split('\t');
            for (column, cell) in Column::ALL.iter().zip(cells).skip(1) {
                if let Value::String(text) = &json[column.name()] {
                    assert_eq!(cell, text, "{}", column.name());
                }
            }
            line(&later);
        }
    }

    /// A record decoded on its own, for comparison (its clock, and so its
    /// time, is its own).
    fn decoder_record(raw: &RawEvent) -> crate::record::Record<'static> {
        let decoder = Box::leak(Box::new(Decoder::new(CgroupPaths::new(), TimeMode::Utc)));
        let bytes = Box::leak(bytes_of(raw, None).into_boxed_slice());
        decoder.decode(bytes).unwrap()
    }

    /// The default table fits a shmget in 100 terminal columns; a line
    /// longer than the width given is cut with a marker, values longer
    /// than their column too, and the columns after them stay in line.
    #[test]
    fn table_rows_fit_their_width() {
        use unicode_width::UnicodeWidthStr;
        let mut decoder = Decoder::new(CgroupPaths::new(), TimeMode::Utc);
        let raws = raw_events();
        for max in [None, Some(100), Some(80)] {
            let table = table::Table::new(None, false, TimeMode::Utc, max);
            let mut out = vec![];
            table.write_header(&mut out);
            for raw in &raws {
                table.write_record(&mut out, &decoder.decode(&bytes_of(raw, None)).unwrap());
            }
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), raws.len() + 1, "{text}");
            // The ERRNO column starts at the same place in every row.
            if let Some(errno_at) = lines[0].find("ERRNO") {
                let errno: String = lines[2].chars().skip(errno_at).take(6).collect();
                assert_eq!(errno, "ENOENT", "{text}");
            }
            // The hostile name (21 columns escaped) is cut to COMM's 15.
            assert!(lines[1].contains(" a\\x09b\\x0ac\\x1… "), "{text}");
            for line in &lines {
                assert!(line.width() <= max.unwrap_or(usize::MAX), "{line:?}");
            }
            if max == Some(80) {
                assert!(lines[1].ends_with('…'), "{text}");
            } else {
                // A shmget's details start within 100 columns: a failed
                // one's with its reason.
                let details_at = lines[0][..lines[0].find("DETAILS").unwrap()]
                    .chars()
                    .count();
                let details: String = lines[2].chars().skip(details_at).collect();
                assert!(details.starts_with("no seg"), "{text}");
            }
        }
    }

    /// `--columns`: the table and TSV show the columns asked for, in that
    /// order, with headers; the time can stand anywhere.
    #[test]
    fn chosen_columns() {
        let mut decoder = Decoder::new(CgroupPaths::new(), TimeMode::Utc);
        let record_bytes = bytes_of(&raw_events()[1], None);
        let record = decoder.decode(&record_bytes).unwrap();
        let columns = [Column::Errno, Column::Time, Column::Pid, Column::Time];
        let mut tsv_writer = tsv::TsvWriter::new(Some(&columns));
        let mut tsv = vec![];
        tsv_writer.write_header(&mut tsv);
        tsv_writer.write_record(&mut tsv, &record);
        tsv_writer.write_record(&mut tsv, &record);
        let time = record.time;
        let row = format!("ENOENT\t{time}\t4321\t{time}\n");
        assert_eq!(
            String::from_utf8(tsv).unwrap(),
            format!("errno\ttime\tpid\ttime\n{row}{row}")
        );
        let table = table::Table::new(Some(&columns[..3]), false, TimeMode::Utc, None);
        let mut out = vec![];
        table.write_header(&mut out);
        table.write_record(&mut out, &record);
        let of_day = &time[11..19];
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("ERRNO  TIME(UTC)     PID\nENOENT {of_day}     4321\n")
        );
    }

    /// A record from another build's BPF object is an error, not a guess.
    #[test]
    fn unknown_raw_values_are_errors() {
        let mut decoder = Decoder::new(CgroupPaths::new(), TimeMode::Utc);
        let mut raw = raw_events()[0];
        raw.args.op = shm_op(9);
        assert!(decoder.decode(&bytes_of(&raw, None)).is_err());
        let mut raw = raw_events()[0];
        raw.args.abi = shm_abi(9);
        assert!(decoder.decode(&bytes_of(&raw, None)).is_err());
    }
}
