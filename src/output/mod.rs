//! Writing events to stdout as a table, TSV or JSON lines, with a flush
//! policy fit for both terminals and pipes.

mod json;
mod table;
mod tsv;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, CgroupPaths};
use crate::cli::Format;
use crate::decode::{self, TimeFormatter};
use crate::event::{Event, Field};
use crate::segment;

/// Output to a file or pipe is written in blocks, but never held longer
/// than this while events flow (checked between ring-buffer batches).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const BUFFER_SIZE: usize = 64 * 1024;

/// The fields that are text rather than numbers, rendered by the same
/// functions for every format, so that all show the very same text. (TSV,
/// the bulk format, writes them straight into its line instead.)
#[derive(Default)]
pub struct TextFields {
    pub rfc3339: Vec<u8>,
    pub comm: Vec<u8>,
    /// These and the rest are empty when the event has no such field.
    pub key: Vec<u8>,
    pub shmflg: Vec<u8>,
    pub flags: Vec<u8>,
    pub mode: Vec<u8>,
    pub cmd: Vec<u8>,
    pub addr: Vec<u8>,
    pub attach_addr: Vec<u8>,
    pub cgroup_path: Vec<u8>,
    pub container: Vec<u8>,
}

impl TextFields {
    fn render(&mut self, event: &Event, time: &mut TimeFormatter, cgroup: Option<&Cgroup>) {
        let args = &event.raw.args;
        for field in [
            &mut self.rfc3339,
            &mut self.comm,
            &mut self.key,
            &mut self.shmflg,
            &mut self.flags,
            &mut self.mode,
            &mut self.cmd,
            &mut self.addr,
            &mut self.attach_addr,
            &mut self.cgroup_path,
            &mut self.container,
        ] {
            field.clear();
        }
        time.write_rfc3339(&mut self.rfc3339, event.unix_ns);
        decode::write_escaped(&mut self.comm, event.comm());
        if event.has(Field::Key) {
            decode::write_key(&mut self.key, args.key);
            decode::write_mode(&mut self.mode, decode::mode(args.shmflg));
        }
        if event.has(Field::Shmflg) {
            decode::write_hex(&mut self.shmflg, args.shmflg as u32 as u64, 0);
            decode::write_call_flags(&mut self.flags, event.op(), args.shmflg);
        }
        if event.has(Field::Cmd) {
            decode::write_shmctl_cmd(&mut self.cmd, args.cmd);
        }
        if event.has(Field::Addr) {
            decode::write_hex(&mut self.addr, args.addr, 0);
        }
        if event.has(Field::AttachAddr) {
            decode::write_hex(&mut self.attach_addr, event.raw.attach_addr, 0);
        }
        if let Some(cgroup) = cgroup {
            decode::write_escaped(&mut self.cgroup_path, cgroup.path.as_bytes());
            if let Some(container) = &cgroup.container {
                decode::write_escaped(&mut self.container, container.as_bytes());
            }
        }
    }
}

pub fn stdout_is_terminal() -> bool {
    nix::unistd::isatty(io::stdout().as_fd()).unwrap_or(false)
}

pub struct Output {
    format: Format,
    file: File,
    /// Formatted events not yet written; events are formatted straight
    /// into it.
    pending: Vec<u8>,
    fields: TextFields,
    time: TimeFormatter,
    cgroups: CgroupPaths,
    tsv: tsv::TsvWriter,
    /// A terminal sees each event at once; anything else gets blocks.
    interactive: bool,
    last_flush: Instant,
}

impl Output {
    /// Writes to a duplicate of stdout's descriptor, bypassing std's own
    /// line buffering of `Stdout`.
    pub fn stdout(format: Format) -> io::Result<Output> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        let mut output = Output {
            format,
            file: File::from(fd),
            pending: Vec::with_capacity(BUFFER_SIZE + 4096),
            fields: TextFields::default(),
            time: TimeFormatter::default(),
            cgroups: CgroupPaths::new(),
            tsv: tsv::TsvWriter::default(),
            interactive: stdout_is_terminal(),
            last_flush: Instant::now(),
        };
        match format {
            Format::Table => table::write_header(&mut output.pending),
            Format::Tsv => tsv::write_header(&mut output.pending),
            Format::Json => {}
        }
        output.flush()?;
        Ok(output)
    }

    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        let cgroup = self.cgroups.get(event.raw.cgroup_id);
        let outcome = segment::outcome(event.raw);
        match self.format {
            Format::Tsv => self
                .tsv
                .write_event(&mut self.pending, event, cgroup, outcome),
            Format::Table => {
                self.fields.render(event, &mut self.time, cgroup);
                table::write_event(&mut self.pending, event, &self.fields, outcome)
            }
            Format::Json => {
                self.fields.render(event, &mut self.time, cgroup);
                json::write_event(&mut self.pending, event, &self.fields, outcome)?
            }
        }
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

    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        let result = self.file.write_all(&self.pending);
        self.pending.clear();
        result
    }
}
