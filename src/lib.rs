//! shmget-trace: every System V shared-memory request on this host, live.
//!
//! Stages, one module each: `cli` parses, `attach` picks a mode and hooks
//! the kernel (BPF side in `src/bpf/`), `trace` runs the ring-buffer loop,
//! `record` turns each raw event into one decoded record (with `domain`,
//! `decode`, `segment`, `reason` and `cgroup`), `output` writes records as a table,
//! TSV or JSON. The library exists for the binary, its tests and its
//! benchmarks; it is no stable API.

pub mod attach;
pub mod cgroup;
pub mod cli;
pub mod decode;
pub mod domain;
pub mod error;
pub mod event;
pub mod fold;
pub mod kernel;
pub mod output;
pub mod privileges;
pub mod reason;
pub mod record;
pub mod ringbuf;
pub mod segment;
pub mod trace;

pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/shmget_trace.skel.rs"));
}

/// Writes one line to stderr, prefixed `shmget-trace: `. A closed stderr
/// is no reason to fail: unlike `eprintln!`, this never panics.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::write_note(format_args!($($arg)*))
    };
}

#[doc(hidden)]
pub fn write_note(args: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "shmget-trace: {args}");
}
