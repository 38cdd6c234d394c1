//! Writing events to stdout as a table, TSV or JSON lines, with a flush
//! policy fit for both terminals and pipes.

mod json;
mod table;
mod tsv;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::cli::Format;
use crate::decode::{self, TimeFormatter};
use crate::event::Event;

/// Output to a file or pipe is written in blocks, but never held longer
/// than this while events flow (checked between ring-buffer batches).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const BUFFER_SIZE: usize = 64 * 1024;

/// The fields that are text rather than numbers, rendered once per event so
/// that every format shows the very same text.
#[derive(Default)]
pub struct TextFields {
    time: TimeFormatter,
    pub rfc3339: Vec<u8>,
    pub comm: Vec<u8>,
    pub key: Vec<u8>,
    pub shmflg: Vec<u8>,
    pub flags: Vec<u8>,
    pub mode: Vec<u8>,
}

impl TextFields {
    fn render(&mut self, event: &Event) {
        let args = &event.raw.args;
        for field in [
            &mut self.rfc3339,
            &mut self.comm,
            &mut self.key,
            &mut self.shmflg,
            &mut self.flags,
            &mut self.mode,
        ] {
            field.clear();
        }
        self.time.write_rfc3339(&mut self.rfc3339, event.unix_ns);
        decode::write_escaped(&mut self.comm, event.comm());
        decode::write_key(&mut self.key, args.key);
        decode::write_hex(&mut self.shmflg, args.shmflg as u32 as u64, 0);
        decode::write_flags(&mut self.flags, args.shmflg);
        decode::write_mode(&mut self.mode, decode::mode(args.shmflg));
    }
}

pub fn stdout_is_terminal() -> bool {
    nix::unistd::isatty(io::stdout().as_fd()).unwrap_or(false)
}

pub struct Output {
    format: Format,
    out: BufWriter<File>,
    line: Vec<u8>,
    fields: TextFields,
    /// A terminal sees each event at once; anything else gets blocks.
    interactive: bool,
    last_flush: Instant,
}

impl Output {
    /// Writes to a duplicate of stdout's descriptor, bypassing std's own
    /// line buffering of `Stdout`.
    pub fn stdout(format: Format) -> io::Result<Output> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        let interactive = stdout_is_terminal();
        let mut output = Output {
            format,
            out: BufWriter::with_capacity(BUFFER_SIZE, File::from(fd)),
            line: Vec::with_capacity(512),
            fields: TextFields::default(),
            interactive,
            last_flush: Instant::now(),
        };
        output.line.clear();
        match format {
            Format::Table => table::write_header(&mut output.line),
            Format::Tsv => tsv::write_header(&mut output.line),
            Format::Json => {}
        }
        output.out.write_all(&output.line)?;
        output.out.flush()?;
        Ok(output)
    }

    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        self.fields.render(event);
        self.line.clear();
        match self.format {
            Format::Table => table::write_event(&mut self.line, event, &self.fields),
            Format::Tsv => tsv::write_event(&mut self.line, event, &self.fields),
            Format::Json => json::write_event(&mut self.line, event, &self.fields)?,
        }
        self.out.write_all(&self.line)?;
        if self.interactive {
            self.flush()?;
        }
        Ok(())
    }

    /// Called between batches: pushes out what has waited long enough.
    pub fn flush_if_due(&mut self) -> io::Result<()> {
        if !self.out.buffer().is_empty() && self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        self.out.flush()
    }
}
