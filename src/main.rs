//! shmget-trace: parse, load and attach, poll; every error is one line.

use std::process::ExitCode;

use shmget_trace::error::Error;
use shmget_trace::{cli, trace};

fn main() -> ExitCode {
    match cli::Cli::parse_args().and_then(|cli| trace::run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            shmget_trace::note!("{err}");
            match err {
                Error::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
