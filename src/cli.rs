//! Command-line options, in libbpf-tools' conventions.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::decode::{self, TimeMode};
use crate::domain::{AttachMode, Op};
use crate::error::Error;
use crate::output::columns::Column;

/// Kernel allows ring buffers of a power-of-two number of pages.
const PAGE_SIZE: u64 = 4096;
/// The ring buffer is kernel memory, mapped twice into the tracer; past
/// this it costs gigabytes and seconds to start for no use: the default
/// holds 200,000 events.
const MAX_RINGBUF_SIZE: u64 = 256 << 20;
/// Kernel comm is 16 bytes with the terminating NUL.
const MAX_COMM_LEN: usize = 15;
/// Values of -p and of -u at most: the BPF side compares each in a loop
/// with this bound (MAX_FILTER_IDS in shmget_trace.h).
pub const MAX_FILTER_IDS: usize = 8;
/// --errno takes errors below this: a bitmap of 64-bit words on the BPF
/// side (ERRNO_FILTER_WORDS in shmget_trace.h). Linux's errors end at 133.
pub const MAX_FILTER_ERRNO: u32 = 256;
/// --duration: a deadline this far off still fits an Instant.
const MAX_DURATION_SECS: f64 = 1e9;

#[derive(Parser, Debug)]
#[command(
    name = "shmget-trace",
    version = VERSION,
    about = "Trace System V shared-memory requests (shmget, and on request shmat, shmdt and \
             shmctl) on this host, live: by the x86_64 syscalls, the ia32 syscalls and the ia32 \
             ipc() multiplexer.",
    after_help = "Needs CAP_BPF and CAP_PERFMON (or root). Stops on Ctrl-C, SIGTERM, \
                  --count or --duration and prints `shmget-trace: N events, M lost` on stderr.",
    after_long_help = "Needs CAP_BPF and CAP_PERFMON (or root). Stops on Ctrl-C, SIGTERM, \
                       --count or --duration and prints `shmget-trace: N events, M lost` on \
                       stderr.\n\n\
                       Examples:\n  \
                       shmget-trace\n      \
                       a table of shmget calls, local time\n  \
                       shmget-trace --events all --wide\n      \
                       every shared-memory call, more columns, nothing cut\n  \
                       shmget-trace -p 1234,5678 --errno ENOENT,EACCES\n      \
                       two processes' calls that failed with ENOENT or EACCES\n  \
                       shmget-trace -n postgres -o time,pid,comm,key,size,mode,ret,errno\n      \
                       processes with postgres in their name, these columns\n  \
                       shmget-trace --tsv --no-header --output shm.tsv --append\n      \
                       TSV added to a log",
    max_term_width = 120
)]
pub struct Cli {
    /// Only calls from these processes (thread group ids): comma-separated
    /// or repeated, at most 8
    #[arg(short = 'p', long, value_name = "PID", value_delimiter = ',',
          value_parser = parse_pid, allow_negative_numbers = true)]
    pub pid: Vec<u32>,

    /// Only calls from this thread
    #[arg(short = 't', long, value_name = "TID", value_parser = parse_pid,
          allow_negative_numbers = true)]
    pub tid: Option<u32>,

    /// Only calls made by these user ids: comma-separated or repeated, at
    /// most 8
    #[arg(short = 'u', long, value_name = "UID", value_delimiter = ',',
          value_parser = parse_uid, allow_negative_numbers = true)]
    pub uid: Vec<u32>,

    /// Only calls from threads whose comm contains this text (as bcc's
    /// tools match names), at most 15 bytes
    #[arg(short = 'n', long = "name", value_name = "TEXT", value_parser = parse_comm,
          conflicts_with = "name_exact")]
    pub name: Option<String>,

    /// Only calls from threads whose comm is exactly this
    #[arg(long, value_name = "COMM", value_parser = parse_comm)]
    pub name_exact: Option<String>,

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

    /// Only calls that failed with these errors, by name (ENOENT,EACCES):
    /// comma-separated or repeated
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = parse_errno)]
    pub errno: Vec<u32>,

    /// Stop after this many seconds
    #[arg(short = 'd', long, value_name = "SECONDS", value_parser = parse_duration,
          allow_negative_numbers = true)]
    pub duration: Option<Duration>,

    /// Stop after this many lines (a line of folded repeats is one)
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    pub count: Option<u64>,

    /// Tab-separated values with a header line
    #[arg(long, conflicts_with = "json")]
    pub tsv: bool,

    /// One JSON object per line
    #[arg(long)]
    pub json: bool,

    /// The columns of the table or of the TSV, comma-separated: time, pid,
    /// tid, ppid, uid, gid, comm, abi, call, key, size, shmflg, flags, mode,
    /// ret, errno, cgroup, cgroup_path, container, pidns, mntns, origin,
    /// owner_uid, creator_pid, squat, event, shmid, cmd, addr, attach_addr,
    /// attach_addr_from, count (calls a line stands for), last_time (of a
    /// fold line's last call), ipcns, host_ipc, reason, reason_code, details
    /// (what each call names, and why it failed, as the table shows it)
    #[arg(short = 'o', long, value_name = "LIST", value_delimiter = ',',
          value_parser = parse_column, conflicts_with = "json")]
    pub columns: Vec<Column>,

    /// Table: more columns (tid, uid, abi, mode, origin, container), and no
    /// value or line cut to fit the terminal
    #[arg(short = 'w', long, conflicts_with_all = ["tsv", "json"])]
    pub wide: bool,

    /// The time: local (the table's default; TZ is respected), utc (the
    /// default of TSV and JSON) or relative (seconds since the start)
    #[arg(short = 'T', long, value_enum, value_name = "WHEN")]
    pub time: Option<TimeMode>,

    /// No header line (TSV appended to a log, or a table)
    #[arg(long, conflicts_with = "json")]
    pub no_header: bool,

    /// Write the events to this file instead of stdout (made anew, or
    /// emptied)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// With --output: add to the end of the file instead of emptying it
    #[arg(long, requires = "output")]
    pub append: bool,

    /// How to hook the kernel; auto picks the cheapest that works here
    #[arg(long, value_enum, value_name = "MODE", default_value_t = AttachMode::Auto)]
    pub attach: AttachMode,

    /// Ring buffer size: a power of two from 4K to 256M, as bytes or with K, M or G
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_ringbuf_size)]
    pub ringbuf_size: u32,

    /// Say why each attach mode was or was not used; -vv adds libbpf's log
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `-V`: the version, the target it was built for and the git revision.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SHMGET_TRACE_TARGET"),
    ", git ",
    env!("SHMGET_TRACE_GIT_REVISION"),
    ")"
);

/// The operations --events asked for, in canonical order, without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Events(pub Vec<Op>);

fn parse_events(s: &str) -> Result<Events, String> {
    let mut wanted = vec![];
    for name in s.split(',').map(str::trim) {
        match name {
            "all" => wanted.extend(Op::ALL),
            _ => wanted.push(*Op::ALL.iter().find(|op| op.name() == name).ok_or_else(|| {
                let valid: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
                unknown_name("event", name, &[&valid[..], &["all"]].concat())
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
        let cli = Cli::try_parse().map_err(|err| {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                std::process::exit(0);
            }
            Error::Usage(usage_error(std::env::args_os()))
        })?;
        cli.check()?;
        Ok(cli)
    }

    /// What clap cannot say about the values together.
    fn check(&self) -> Result<(), Error> {
        for (option, count, what) in [
            ("-p/--pid", self.pid.len(), "process ids"),
            ("-u/--uid", self.uid.len(), "user ids"),
        ] {
            if count > MAX_FILTER_IDS {
                return Err(Error::Usage(format!(
                    "{option} takes at most {MAX_FILTER_IDS} {what} (the kernel side compares \
                     each in turn); {count} were given"
                )));
            }
        }
        Ok(())
    }

    /// The time the output shows: as asked, else local time of day for
    /// people and UTC for programs.
    pub fn time_mode(&self) -> TimeMode {
        self.time.unwrap_or(match self.format() {
            Format::Table => TimeMode::Local,
            Format::Tsv | Format::Json => TimeMode::Utc,
        })
    }

    /// The name filter: the text, and whether it must be the whole comm.
    pub fn name_filter(&self) -> Option<(&str, bool)> {
        match (&self.name, &self.name_exact) {
            (Some(text), _) => Some((text, false)),
            (None, Some(comm)) => Some((comm, true)),
            (None, None) => None,
        }
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
        Err(err) => describe_clap_error(&err),
        Ok(_) => "invalid arguments".into(),
    }
}

/// clap explains itself over several lines (valid values, tips, usage):
/// its first line says what is wrong, and the valid values and the nearest
/// one follow on the same line here.
fn describe_clap_error(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let mut line = first_line_of_clap_error(&err.render().to_string());
    let strings = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(s)) => s.clone(),
        _ => vec![],
    };
    let valid = strings(ContextKind::ValidValue);
    let given = strings(ContextKind::InvalidValue);
    if let (false, Some(given)) = (valid.is_empty(), given.first()) {
        let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
        if let Some(nearest) = nearest(given, &valid) {
            line.push_str(&format!("; did you mean '{nearest}'?"));
        }
        line.push_str(&format!(" (possible values: {})", valid.join(", ")));
    } else if let Some(nearest) = strings(ContextKind::SuggestedArg).first() {
        line.push_str(&format!("; did you mean '{nearest}'?"));
    } else if let Some(given) = strings(ContextKind::InvalidArg)
        .first()
        .filter(|_| err.kind() == clap::error::ErrorKind::UnknownArgument)
        .and_then(|arg| arg.strip_prefix("--"))
    {
        // clap finds no near option for a swap of letters (`--tvs`).
        use clap::CommandFactory;
        let command = Cli::command();
        let options: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        let given = given.split('=').next().unwrap_or(given);
        if let Some(nearest) = nearest(given, &options) {
            line.push_str(&format!("; did you mean '--{nearest}'?"));
        }
    }
    line
}

/// clap explains itself over several lines (tips, usage); its first line
/// says what is wrong, or introduces the lines that do (`the following
/// required arguments were not provided:`), which join it.
fn first_line_of_clap_error(rendered: &str) -> String {
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut line = first.trim().trim_start_matches("error: ").to_string();
    if line.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with("Usage:"))
            .map(str::trim)
            .collect();
        line = format!("{} {}", line, listed.join(", "));
    }
    line
}

/// The valid name a user most likely meant: the one it abbreviates (`tp`
/// for `tracepoint`, as its first letter and then some of its letters in
/// order), else the one it misses by a slip of one letter, else the most
/// similar one that is similar enough.
fn nearest<'a>(given: &str, valid: &[&'a str]) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    let abbreviates = |name: &str| {
        let mut letters = name.chars();
        given.chars().next() == name.chars().next()
            && given.chars().all(|c| letters.any(|n| n == c))
    };
    let abbreviated: Vec<&str> = valid
        .iter()
        .copied()
        .filter(|v| abbreviates(&v.to_ascii_lowercase()))
        .collect();
    if let [only] = abbreviated[..] {
        return Some(only);
    }
    // One letter wrong, missing, extra, or two swapped (`--tvs`).
    let one_slip: Vec<&str> = valid
        .iter()
        .copied()
        .filter(|v| strsim::damerau_levenshtein(&given, &v.to_ascii_lowercase()) == 1)
        .collect();
    if let [only] = one_slip[..] {
        return Some(only);
    }
    valid
        .iter()
        .map(|v| (strsim::jaro_winkler(&given, &v.to_ascii_lowercase()), *v))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// `unknown column 'pidd'; did you mean 'pid'? (valid: time, pid, ...)`;
/// the given text comes escaped from `usage_error`.
fn unknown_name(what: &str, given: &str, valid: &[&str]) -> String {
    let mut message = format!("unknown {what} '{given}'");
    if let Some(nearest) = nearest(given, valid) {
        message.push_str(&format!("; did you mean '{nearest}'?"));
    }
    message.push_str(&format!(" (valid: {})", valid.join(", ")));
    message
}

/// A process or thread id: 1 and up (pid_max is at most 2^22).
fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err("a process or thread id is a whole number from 1 up".into()),
    }
}

/// A user id: 0 and up; (uid_t)-1 is no user.
fn parse_uid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(id) if id != u32::MAX => Ok(id),
        _ => Err(format!(
            "a user id is a whole number from 0 to {}",
            u32::MAX - 1
        )),
    }
}

/// An error name as errno(3) spells it (any case), within the BPF side's
/// bitmap.
fn parse_errno(s: &str) -> Result<u32, String> {
    let upper = s.to_ascii_uppercase();
    match decode::errno_number(&upper) {
        Some(n) if n < MAX_FILTER_ERRNO => Ok(n),
        Some(n) => Err(format!(
            "{upper} is error {n}; only errors below {MAX_FILTER_ERRNO} can be filtered"
        )),
        None => {
            let names = decode::errno_names();
            let mut message = format!("unknown error name '{s}'");
            if let Some(nearest) = nearest(&upper, &names) {
                message.push_str(&format!("; did you mean '{nearest}'?"));
            }
            message.push_str(
                " (names as errno(3) gives them; shmget fails with ENOENT, EEXIST, EINVAL, \
                 ENOSPC, ENOMEM, EACCES, EPERM; shmat, shmdt and shmctl also with EIDRM, \
                 EFAULT, EOVERFLOW)",
            );
            Err(message)
        }
    }
}

fn parse_column(s: &str) -> Result<Column, String> {
    Column::from_name(s.trim()).ok_or_else(|| {
        let valid: Vec<&str> = Column::SELECTABLE.iter().map(|c| c.name()).collect();
        unknown_name("column", s, &valid)
    })
}

fn parse_count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number of events, 1 or more".into()),
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
        Ok(secs) if secs.is_nan() => Err("must be a number of seconds, such as 10 or 0.5".into()),
        Ok(secs) if secs <= 0.0 => Err("must be more than 0 seconds".into()),
        Ok(secs) if secs >= MAX_DURATION_SECS => Err(format!(
            "must be less than {MAX_DURATION_SECS:.0} seconds (about 31 years)"
        )),
        Ok(secs) => Ok(Duration::from_secs_f64(secs)),
        Err(_) => Err("must be a number of seconds, such as 10 or 0.5".into()),
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
        let err = Cli::try_parse_from(["shmget-trace", "--tvs"]).unwrap_err();
        assert_eq!(
            describe_clap_error(&err),
            "unexpected argument '--tvs' found; did you mean '--tsv'?"
        );
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
        assert_eq!(
            parse_events("shmget,shmgte").unwrap_err(),
            "unknown event 'shmgte'; did you mean 'shmget'? (valid: shmget, shmat, shmdt, \
             shmctl, all)"
        );
        assert!(parse_events("").is_err());
    }

    #[test]
    fn the_nearest_name() {
        let modes = ["auto", "kprobe", "fentry", "tracepoint"];
        assert_eq!(nearest("tp", &modes), Some("tracepoint"));
        assert_eq!(nearest("kp", &modes), Some("kprobe"));
        assert_eq!(nearest("fentri", &modes), Some("fentry"));
        assert_eq!(nearest("TRACE", &modes), Some("tracepoint"));
        assert_eq!(nearest("uprobe", &modes), Some("kprobe"));
        assert_eq!(nearest("xyz", &modes), None);
        assert_eq!(nearest("ENOENTT", &["ENOENT", "EEXIST"]), Some("ENOENT"));
    }

    #[test]
    fn several_ids_and_the_filters_they_make() {
        let cli =
            Cli::try_parse_from(["shmget-trace", "-p", "12,34", "-p", "56", "-u", "0"]).unwrap();
        assert_eq!((cli.pid, cli.uid), (vec![12, 34, 56], vec![0]));
        let cli = Cli::try_parse_from(["shmget-trace", "-n", "post"]).unwrap();
        assert_eq!(cli.name_filter(), Some(("post", false)));
        let cli = Cli::try_parse_from(["shmget-trace", "--name-exact", "postgres"]).unwrap();
        assert_eq!(cli.name_filter(), Some(("postgres", true)));
        let cli = Cli::try_parse_from(["shmget-trace", "--errno", "enoent,EACCES"]).unwrap();
        assert_eq!(cli.errno, [2, 13]);
        let nine = Cli::try_parse_from(["shmget-trace", "-u", "1,2,3,4,5,6,7,8,9"]).unwrap();
        assert!(nine.check().is_err());
    }

    #[test]
    fn time_defaults_by_format() {
        let time = |args: &[&str]| {
            Cli::try_parse_from([&["shmget-trace"], args].concat())
                .unwrap()
                .time_mode()
        };
        assert_eq!(time(&[]), TimeMode::Local);
        assert_eq!(time(&["--tsv"]), TimeMode::Utc);
        assert_eq!(time(&["--json"]), TimeMode::Utc);
        assert_eq!(time(&["--tsv", "-T", "local"]), TimeMode::Local);
        assert_eq!(time(&["-T", "relative"]), TimeMode::Relative);
    }

    /// --columns' help names every column it takes.
    #[test]
    fn columns_help_names_every_column() {
        use clap::CommandFactory;
        let command = Cli::command();
        let arg = command
            .get_arguments()
            .find(|a| a.get_id() == "columns")
            .unwrap();
        let help = arg.get_help().unwrap().to_string();
        for column in Column::SELECTABLE {
            assert!(
                help.contains(column.name()),
                "{help} lacks {}",
                column.name()
            );
        }
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
        assert_eq!(cli.ringbuf_size, 16 << 20);
        let cli = Cli::try_parse_from(["shmget-trace", "-k", "-1"]).unwrap();
        assert_eq!(cli.key, Some(-1));
    }
}
