//! shmget-trace: every System V shared-memory request on this host, live.
//!
//! Stages, one module each: `cli` parses, `attach` picks a mode and hooks
//! the kernel (BPF side in `src/bpf/`), `trace` runs the ring-buffer loop,
//! `event`, `decode`, `segment` and `cgroup` turn raw events into fields, `output` writes them
//! as a table, TSV or JSON.

mod attach;
mod cgroup;
mod cli;
mod decode;
mod error;
mod event;
mod output;
mod ringbuf;
mod segment;
mod trace;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/shmget_trace.skel.rs"));
}

use std::process::ExitCode;

use error::Error;

fn main() -> ExitCode {
    match cli::Cli::parse_args().and_then(|cli| trace::run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shmget-trace: {err}");
            match err {
                Error::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
