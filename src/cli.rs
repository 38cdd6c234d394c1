//! Command-line options, in libbpf-tools' conventions.

use std::time::Duration;

use clap::Parser;

use crate::domain::{AttachMode, Op};
use crate::error::Error;

/// Kernel allows ring buffers of a power-of-two number of pages.
const PAGE_SIZE: u64 = 4096;
/// The ring buffer is kernel memory, mapped twice into the tracer; past
/// this it costs gigabytes and seconds to start for no use: the default
/// holds 200,000 events.
const MAX_RINGBUF_SIZE: u64 = 256 << 20;
/// Kernel comm is 16 bytes with the terminating NUL.
const MAX_COMM_LEN: usize = 15;

#[derive(Parser, Debug)]
#[command(
    name = "shmget-trace",
    version,
    about = "Trace System V shared-memory requests (shmget, and on request shmat, shmdt and \
             shmctl) on this host, live: by the x86_64 syscalls, the ia32 syscalls and the ia32 \
             ipc() multiplexer.",
    after_help = "Needs CAP_BPF and CAP_PERFMON (or root). Stops on Ctrl-C, SIGTERM, \
                  --count or --duration and prints `shmget-trace: N events, M lost` on stderr."
)]
pub struct Cli {
    /// Only calls from this process (thread group id)
    #[arg(short = 'p', long, value_name = "PID", value_parser = parse_id)]
    pub pid: Option<u32>,

    /// Only calls from this thread
    #[arg(short = 't', long, value_name = "TID", value_parser = parse_id)]
    pub tid: Option<u32>,

    /// Only calls made by this user id
    #[arg(short = 'u', long, value_name = "UID")]
    pub uid: Option<u32>,

    /// Only calls from threads whose comm is exactly this (at most 15 bytes)
    #[arg(short = 'n', long = "name", value_name = "COMM", value_parser = parse_comm)]
    pub name: Option<String>,

    /// Only shmget calls for this key: hex (0x1234) or decimal; 0 is IPC_PRIVATE
    #[arg(short = 'k', long, value_name = "KEY", value_parser = parse_key, allow_negative_numbers = true)]
    pub key: Option<i32>,

    /// Only calls from this cgroup or one below it: a cgroup2 path, either
    /// under the mount (/sys/fs/cgroup/system.slice) or from its root
    /// (/system.slice)
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    /// Which calls to trace: shmget, shmat, shmdt, shmctl, comma-separated,
    /// or all
    #[arg(long, value_name = "LIST", default_value = "shmget", value_parser = parse_events)]
    pub events: Events,

    /// Only failed calls
    #[arg(short = 'x', long)]
    pub failed: bool,

    /// Stop after this many seconds
    #[arg(short = 'd', long, value_name = "SECONDS", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many events
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Tab-separated values with a header line
    #[arg(long, conflicts_with = "json")]
    pub tsv: bool,

    /// One JSON object per line
    #[arg(long)]
    pub json: bool,

    /// How to hook the kernel; auto picks the cheapest that works here
    #[arg(long, value_enum, value_name = "MODE", default_value_t = AttachMode::Auto)]
    pub attach: AttachMode,

    /// Ring buffer size: a power of two from 4K to 256M, as bytes or with K, M or G
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_ringbuf_size)]
    pub ringbuf_size: u32,

    /// Print libbpf's log and why each attach mode was or was not used
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// The operations --events asked for, in canonical order, without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Events(pub Vec<Op>);

fn parse_events(s: &str) -> Result<Events, String> {
    let mut wanted = vec![];
    for name in s.split(',').map(str::trim) {
        match name {
            "all" => wanted.extend(Op::ALL),
            _ => wanted.push(*Op::ALL.iter().find(|op| op.name() == name).ok_or_else(|| {
                format!("unknown event {name:?}: use shmget, shmat, shmdt, shmctl or all")
            })?),
        }
    }
    Ok(Events(
        Op::ALL
            .into_iter()
            .filter(|op| wanted.contains(op))
            .collect(),
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Tsv,
    Json,
}

impl Cli {
    /// Parses the command line; help and version are printed here and exit 0,
    /// anything else wrong becomes one line.
    pub fn parse_args() -> Result<Cli, Error> {
        Cli::try_parse().map_err(|err| {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                std::process::exit(0);
            }
            Error::Usage(usage_error(std::env::args_os()))
        })
    }

    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.tsv {
            Format::Tsv
        } else {
            Format::Table
        }
    }
}

/// What is wrong with arguments clap refused, in one line. clap quotes
/// the offending argument, which may hold newlines or terminal escapes:
/// the arguments are escaped like any text from outside and parsed again
/// for the message (they fail the same way).
fn usage_error(args: impl IntoIterator<Item = std::ffi::OsString>) -> String {
    use std::os::unix::ffi::OsStrExt;
    let escaped = args.into_iter().map(|arg| {
        let mut text = Vec::new();
        crate::decode::write_escaped(&mut text, arg.as_bytes());
        String::from_utf8(text).unwrap_or_default()
    });
    match Cli::try_parse_from(escaped) {
        Err(err) => first_line_of_clap_error(&err.render().to_string()),
        Ok(_) => "invalid arguments".into(),
    }
}

/// clap explains itself over several lines (tips, usage); its first line
/// says what is wrong.
fn first_line_of_clap_error(rendered: &str) -> String {
    let line = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    line.trim().trim_start_matches("error: ").to_string()
}

fn parse_id(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("must be a positive number".into()),
        Ok(id) => Ok(id),
        Err(_) => Err("must be a positive number".into()),
    }
}

fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if s.len() > MAX_COMM_LEN {
        Err(format!(
            "is {} bytes; a kernel comm holds at most {MAX_COMM_LEN}",
            s.len()
        ))
    } else {
        Ok(s.to_string())
    }
}

/// Keys are 32-bit: accept hex as ipcs prints it, or decimal (signed or not).
pub fn parse_key(s: &str) -> Result<i32, String> {
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.starts_with('-') {
        s.parse::<i32>().ok().map(|k| k as u32)
    } else {
        s.parse::<u32>().ok()
    };
    parsed
        .map(|k| k as i32)
        .ok_or_else(|| "must be a 32-bit key, hex (0x1234) or decimal".into())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err("must be a positive number of seconds".into()),
    }
}

pub fn parse_ringbuf_size(s: &str) -> Result<u32, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err("unit must be K, M or G".into()),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| "must be a size such as 16M, 256K or 65536".to_string())?;
    if !bytes.is_power_of_two() || !(PAGE_SIZE..=MAX_RINGBUF_SIZE).contains(&bytes) {
        return Err(format!(
            "{bytes} bytes: a power of two from 4K to 256M, such as 256K or 16M"
        ));
    }
    Ok(bytes as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ringbuf_sizes() {
        assert_eq!(parse_ringbuf_size("16M"), Ok(16 << 20));
        assert_eq!(parse_ringbuf_size("256k"), Ok(256 << 10));
        assert_eq!(parse_ringbuf_size("4096"), Ok(4096));
        assert_eq!(parse_ringbuf_size("256M"), Ok(256 << 20));
        assert!(parse_ringbuf_size("1G").unwrap_err().contains("to 256M"));
        assert!(parse_ringbuf_size("3000")
            .unwrap_err()
            .contains("power of two"));
        assert!(parse_ringbuf_size("2K")
            .unwrap_err()
            .contains("power of two"));
        assert!(parse_ringbuf_size("2G").is_err());
        assert!(parse_ringbuf_size("16Q").is_err());
        assert!(parse_ringbuf_size("M").is_err());
        assert!(parse_ringbuf_size("99999999999999G").is_err());
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("0"), Ok(0));
        assert_eq!(parse_key("0x1234"), Ok(0x1234));
        assert_eq!(parse_key("0XFFFFFFFF"), Ok(-1));
        assert_eq!(parse_key("4294967295"), Ok(-1));
        assert_eq!(parse_key("-1"), Ok(-1));
        assert_eq!(parse_key("4660"), Ok(4660));
        assert!(parse_key("0x100000000").is_err());
        assert!(parse_key("zz").is_err());
    }

    #[test]
    fn clap_error_becomes_one_line() {
        let err = Cli::try_parse_from(["shmget-trace", "--bogus"]).unwrap_err();
        let line = first_line_of_clap_error(&err.render().to_string());
        assert_eq!(line, "unexpected argument '--bogus' found");
        let err = Cli::try_parse_from(["shmget-trace", "--pid", "abc"]).unwrap_err();
        let line = first_line_of_clap_error(&err.render().to_string());
        assert!(
            line.starts_with("invalid value 'abc' for '--pid <PID>'"),
            "{line}"
        );
    }

    #[test]
    fn a_hostile_argument_is_escaped_in_the_error() {
        let line = usage_error(["shmget-trace", "--pid", "1\x1b[2J\n"].map(Into::into));
        assert!(line.contains("'1\\x1b[2J"), "{line}");
        assert!(!line.contains('\x1b'), "{line}");
    }

    #[test]
    fn events() {
        assert_eq!(parse_events("shmget"), Ok(Events(vec![Op::Shmget])));
        assert_eq!(
            parse_events("shmctl,shmget,shmctl"),
            Ok(Events(vec![Op::Shmget, Op::Shmctl]))
        );
        assert_eq!(parse_events("all"), Ok(Events(Op::ALL.to_vec())));
        assert!(parse_events("shmget,semop")
            .unwrap_err()
            .contains("unknown event \"semop\""));
        assert!(parse_events("").is_err());
    }

    #[test]
    fn comm_length() {
        assert!(parse_comm("postgres").is_ok());
        assert!(parse_comm("0123456789abcdef").is_err());
        assert!(parse_comm("").is_err());
    }

    #[test]
    fn formats() {
        let cli = Cli::try_parse_from(["shmget-trace", "--tsv"]).unwrap();
        assert_eq!(cli.format(), Format::Tsv);
        assert!(Cli::try_parse_from(["shmget-trace", "--tsv", "--json"]).is_err());
        let cli = Cli::try_parse_from(["shmget-trace"]).unwrap();
        assert_eq!(cli.format(), Format::Table);
        assert_eq!(cli.attach, AttachMode::Auto);
        assert_eq!(cli.ringbuf_size, 32 << 20);
        let cli = Cli::try_parse_from(["shmget-trace", "-k", "-1"]).unwrap();
        assert_eq!(cli.key, Some(-1));
    }
}
