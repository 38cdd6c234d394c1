//! The tracing loop: read the ring buffer in bounded batches, write events,
//! report kernel-side losses, stop cleanly.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::MapCore;
use nix::poll::PollTimeout;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::attach;
use crate::cgroup::CgroupPaths;
use crate::cli::Cli;
use crate::domain::UnknownRaw;
use crate::error::Error;
use crate::event::{raw_record, RawRecord, WallClock};
use crate::fold::{self, Folds, RawFoldSlot, Span};
use crate::output::{Layout, Output, FLUSH_INTERVAL};
use crate::privileges;
use crate::record::Decoder;
use crate::ringbuf::RingReader;

/// Events handled between checks of the clock, the stop flag and the loss
/// counters: bounds how long a flood can keep us from them.
const BATCH: usize = 4096;
const LOST_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often the folds the kernel holds are looked at: a run that has
/// stopped is written within the fold window and this.
const FOLD_SCAN_INTERVAL: Duration = Duration::from_millis(250);
/// Processes named in a loss report; the rest are counted.
const LOSERS_SHOWN: usize = 5;
/// A fold record with its header: the smallest a ring buffer holds.
const SMALLEST_RECORD: usize = std::mem::size_of::<fold::RawFold>() + 8;

static STOP: AtomicBool = AtomicBool::new(false);
static REPORT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    if signal == Signal::SIGUSR1 as nix::libc::c_int {
        REPORT.store(true, Ordering::Relaxed);
    } else {
        STOP.store(true, Ordering::Relaxed);
    }
}

/// Ctrl-C, SIGTERM, a hang-up (a dropped ssh session) and SIGQUIT end the
/// run as one: drain, flush, summary. SIGUSR1 asks for the counts so far,
/// as `dd` gives them. No SA_RESTART: the wait is interrupted.
fn install_signal_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
    ] {
        // SAFETY: the handler only stores to atomics.
        unsafe { sigaction(signal, &action) }.expect("these signals accept handlers");
    }
}

/// Takes ring-buffer records through the one path: raw event, record,
/// output.
struct Consumer {
    decoder: Decoder,
    output: Output,
    /// Lines written (what `--count` counts).
    delivered: u64,
    limit: Option<u64>,
    folds: Folds,
    write_error: Option<io::Error>,
    /// Records taken from the ring buffer after a write failed.
    not_written: u64,
    /// A record this build cannot decode: the BPF object and the program
    /// disagree, a bug to report rather than output to guess at.
    undecodable: Option<UnknownRaw>,
}

impl Consumer {
    fn on_sample(&mut self, data: &[u8]) {
        if self.undecodable.is_some() || self.limit_reached() {
            return;
        }
        match raw_record(data) {
            Ok(RawRecord::Fold(raw)) => {
                if let Some((event, span)) = self.folds.record(raw) {
                    let event = event.to_vec();
                    self.write(&event, Some(span));
                }
            }
            Ok(RawRecord::Event(raw, _)) => {
                self.folds.started(raw.fold_tag, data);
                self.write(data, None);
            }
            Err(unknown) => self.undecodable = Some(unknown),
        }
    }

    /// Writes the lines of the folds the kernel still holds: those idle
    /// for the fold window, or all of them at the end (`now` None).
    fn flush_folds(&mut self, slots: &[(usize, RawFoldSlot)], now: Option<u64>) {
        for (slot, state) in slots {
            if self.undecodable.is_some() || self.limit_reached() {
                return;
            }
            if let Some((event, span)) = self.folds.pending(*slot, state, now) {
                let event = event.to_vec();
                self.write(&event, Some(span));
            }
        }
    }

    /// One line: an event, or a fold's calls (`span`) with its first event.
    fn write(&mut self, data: &[u8], span: Option<Span>) {
        // Traced, but there is nowhere to write it: counted, not lost.
        if self.write_error.is_some() {
            self.not_written += span.map_or(1, |s| s.count);
            return;
        }
        let record = match self.decoder.decode_span(data, span) {
            Ok(record) => record,
            Err(unknown) => {
                self.undecodable = Some(unknown);
                return;
            }
        };
        match self.output.write_record(&record) {
            Ok(()) => self.delivered += 1,
            Err(e) => self.write_error = Some(e),
        }
    }

    fn finished(&self) -> bool {
        self.write_error.is_some() || self.undecodable.is_some() || self.limit_reached()
    }

    /// `--count` events have been written: the rest are not wanted.
    fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|n| self.delivered >= n)
    }

    fn flush(&mut self) {
        if self.write_error.is_none() {
            if let Err(e) = self.output.flush() {
                self.write_error = Some(e);
            }
        }
    }
}

/// Where the events go: `--output FILE` (emptied, or appended to), else
/// stdout.
fn output_file(cli: &Cli) -> Result<File, Error> {
    let Some(path) = &cli.output else {
        return Output::stdout_file().map_err(Error::Output);
    };
    OpenOptions::new()
        .write(true)
        .create(true)
        .append(cli.append)
        .truncate(!cli.append)
        .open(path)
        .map_err(|source| Error::OutputFile {
            path: escaped_path(path),
            source,
        })
}

fn escaped_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut text = Vec::new();
    crate::decode::write_escaped(&mut text, path.as_os_str().as_bytes());
    String::from_utf8(text).unwrap_or_default()
}

pub fn run(cli: &Cli) -> Result<(), Error> {
    install_signal_handlers();
    // -v is the attach modes' reasons (see `attach`); libbpf's own log,
    // thousands of lines, is -vv.
    if cli.verbose >= 2 {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, |_, msg| {
            let _ = std::io::Write::write_all(&mut io::stderr(), msg.as_bytes());
        })));
    } else {
        libbpf_rs::set_print(None);
    }
    let output = Output::new(
        output_file(cli)?,
        Layout {
            format: cli.format(),
            columns: (!cli.columns.is_empty()).then(|| cli.columns.clone()),
            wide: cli.wide,
            time: cli.time_mode(),
            header: !cli.no_header,
        },
    );
    // Relative times count from here, before the hooks are in place.
    let decoder = Decoder::new(CgroupPaths::new(), cli.time_mode());
    // A terminal shows each event at once; for files and pipes the reader
    // is woken only when an eighth of the ring buffer waits, and otherwise
    // finds events on its FLUSH_INTERVAL timer. The rest is room for the
    // reader's stalls (another process on its CPU, a slow write).
    let wakeup_bytes = if output.interactive() {
        0
    } else {
        u64::from(cli.ringbuf_size) / 8
    };
    let mut tracer = attach::start(cli, wakeup_bytes)?;

    let mut consumer = Consumer {
        decoder,
        output,
        delivered: 0,
        limit: cli.count,
        folds: Folds::default(),
        write_error: None,
        undecodable: None,
        not_written: 0,
    };
    if let Some(why) = consumer.decoder.cgroups_unavailable() {
        crate::note!("{why}: no cgroup paths or containers are shown");
    }
    // The header, at once: a reader that is gone already ends the run.
    consumer.flush();
    let events = &tracer.skel.maps.events;
    let mut ring =
        RingReader::new(events.as_fd(), events.max_entries()).map_err(|e| Error::Bpf {
            context: "mapping the ring buffer",
            source: e.into(),
        })?;

    // Loaded, attached, mapped: from here on, reading needs little.
    privileges::drop_all_but_kept().map_err(Error::DropPrivileges)?;
    crate::note!("tracing ({}): {}", tracer.mode.name(), tracer.coverage());

    let deadline = cli.duration.map(|d| Instant::now() + d);
    let mut lost_reported = 0;
    let mut next_lost_check = Instant::now() + LOST_CHECK_INTERVAL;
    let mut next_fold_scan = Instant::now() + FOLD_SCAN_INTERVAL;
    loop {
        if STOP.load(Ordering::Relaxed)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || consumer.finished()
        {
            break;
        }
        let consumed = ring.consume(BATCH, |data| consumer.on_sample(data));
        // Caught up: sleep until woken. In bulk, a short batch is caught up
        // too, rather than chasing the producers record by record.
        if consumed == 0 || (wakeup_bytes > 0 && consumed < BATCH) {
            let wait = deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(FLUSH_INTERVAL)
                .min(FLUSH_INTERVAL);
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
            ring.wait(tracer.reader_asleep(), timeout);
        }
        // Caught up with the ring buffer (the records of the folds read
        // now came before): the folds whose runs have ended.
        if consumed < BATCH && Instant::now() >= next_fold_scan {
            next_fold_scan = Instant::now() + FOLD_SCAN_INTERVAL;
            let now = WallClock::now().boot_ns_now();
            consumer.flush_folds(&tracer.fold_slots(), Some(now));
        }
        if let Err(e) = consumer.output.flush_if_due() {
            consumer.write_error = Some(e);
        }
        if REPORT.swap(false, Ordering::Relaxed) {
            // Exact for every call made before the signal: take and write
            // all that waits first. No more than the ring buffer held: a
            // flood going on would keep the reader here.
            let mut batches = cli.ringbuf_size as usize / SMALLEST_RECORD / BATCH + 1;
            while batches > 0
                && !consumer.finished()
                && ring.consume(BATCH, |data| consumer.on_sample(data)) > 0
            {
                batches -= 1;
            }
            // And the repeats the kernel holds (a run going on continues
            // in a new line).
            consumer.flush_folds(&tracer.fold_slots(), None);
            consumer.flush();
            note_counts(
                &tracer,
                consumer.output.written(),
                &tracer.lost()?,
                " so far",
            );
        }
        if Instant::now() >= next_lost_check {
            next_lost_check = Instant::now() + LOST_CHECK_INTERVAL;
            let lost = tracer.lost()?;
            if lost.total() > lost_reported {
                let hint = if lost.ringbuf_full > 0 {
                    " (a larger --ringbuf-size helps when the ring buffer is full)"
                } else {
                    ""
                };
                crate::note!(
                    "{} events lost so far: {}{hint}",
                    lost.total(),
                    lost.reasons()
                );
                report_losers(&tracer);
                lost_reported = lost.total();
            }
        }
    }

    // Stop producing, then take what the ring buffer still holds.
    tracer.detach();
    while ring.consume(BATCH, |data| consumer.on_sample(data)) > 0 {}
    // Every fold still pending: no call can join one now.
    consumer.flush_folds(&tracer.fold_slots(), None);
    let lost = tracer.lost()?;
    consumer.flush();
    // Only what reached the output counts as an event; what a failed
    // write dropped is said, never counted.
    let unwritten = consumer.output.unwritten() + consumer.not_written;
    if unwritten > 0 {
        if let Some(e) = consumer
            .write_error
            .as_ref()
            .filter(|e| e.kind() != io::ErrorKind::BrokenPipe)
        {
            crate::note!("{unwritten} events not written: {e}");
        }
    }
    note_counts(&tracer, consumer.output.written(), &lost, "");
    if let Some(unknown) = consumer.undecodable {
        return Err(Error::Undecodable(unknown));
    }
    match consumer.write_error {
        // The reader went away (`| head`): that is how a pipeline ends.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Some(e) => Err(Error::Output(e)),
        None => Ok(()),
    }
}

/// The counts, on SIGUSR1 (`when` " so far") and at exit: who lost events
/// and why on lines of their own before one fixed line that scripts parse.
fn note_counts(tracer: &attach::Tracer, written: u64, lost: &crate::attach::Lost, when: &str) {
    if lost.total() > 0 {
        report_losers(tracer);
        crate::note!("lost{when}: {}", lost.reasons());
    }
    crate::note!("{written} events{when}, {} lost", lost.total());
}

/// `lost by process: 1234 (flood) 5000, 77 (bash) 3`, when any lost.
fn report_losers(tracer: &attach::Tracer) {
    let losers = tracer.lost_by_process();
    if !losers.is_empty() {
        crate::note!(
            "lost by process: {}",
            attach::describe_losses(&losers, LOSERS_SHOWN)
        );
    }
}
