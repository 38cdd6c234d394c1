//! Turning raw values into text: flags of shmget and shmat, shmctl commands,
//! keys, timestamps and process names. Pure functions, shared by every
//! output format so that all three say the same thing.

use std::sync::OnceLock;

use nix::errno::Errno;

use crate::domain::Op;

// include/uapi/linux/ipc.h and shm.h
const IPC_CREAT: u32 = 0o1000;
const IPC_EXCL: u32 = 0o2000;
const SHM_HUGETLB: u32 = 0o4000;
const SHM_NORESERVE: u32 = 0o10000;
const SHM_HUGE_SHIFT: u32 = 26;
const SHM_HUGE_MASK: u32 = 0x3f;
const MODE_BITS: u32 = 0o777;

const NAMED_FLAGS: [(u32, &str); 4] = [
    (IPC_CREAT, "IPC_CREAT"),
    (IPC_EXCL, "IPC_EXCL"),
    (SHM_HUGETLB, "SHM_HUGETLB"),
    (SHM_NORESERVE, "SHM_NORESERVE"),
];

// include/uapi/linux/shm.h: shmat flags
const SHMAT_FLAGS: [(u32, &str); 4] = [
    (0o10000, "SHM_RDONLY"),
    (0o20000, "SHM_RND"),
    (0o40000, "SHM_REMAP"),
    (0o100000, "SHM_EXEC"),
];

/// The flags of a call: shmget's (below) or shmat's.
pub fn write_call_flags(out: &mut Vec<u8>, op: Op, shmflg: i32) {
    match op {
        Op::Shmat => {
            let start = out.len();
            let mut rest = shmflg as u32;
            for (bit, name) in SHMAT_FLAGS {
                if rest & bit != 0 {
                    if out.len() > start {
                        out.push(b'|');
                    }
                    out.extend_from_slice(name.as_bytes());
                    rest &= !bit;
                }
            }
            if rest != 0 {
                if out.len() > start {
                    out.push(b'|');
                }
                write_hex(out, rest as u64, 0);
            }
            if out.len() == start {
                out.push(b'-');
            }
        }
        _ => write_flags(out, shmflg),
    }
}

/// shmctl's command: `IPC_RMID`, `IPC_STAT|IPC_64`, ...; a number when it
/// has no name.
pub fn write_shmctl_cmd(out: &mut Vec<u8>, cmd: i32) {
    const IPC_64: i32 = 0x100;
    let name = match cmd & !IPC_64 {
        0 => "IPC_RMID",
        1 => "IPC_SET",
        2 => "IPC_STAT",
        3 => "IPC_INFO",
        11 => "SHM_LOCK",
        12 => "SHM_UNLOCK",
        13 => "SHM_STAT",
        14 => "SHM_INFO",
        15 => "SHM_STAT_ANY",
        _ => return write_decimal(out, cmd),
    };
    out.extend_from_slice(name.as_bytes());
    if cmd & IPC_64 != 0 {
        out.extend_from_slice(b"|IPC_64");
    }
}

/// Appends the symbolic flags of `shmflg`, `|`-joined: the named flags, the
/// huge page size (a 6-bit log2 field, so decoded by mask, not by bit test),
/// then any bits left over as hex; `-` when there are none. The permission
/// bits are not flags (see [`write_mode`]).
pub fn write_flags(out: &mut Vec<u8>, shmflg: i32) {
    let flg = shmflg as u32;
    let start = out.len();
    let sep = |out: &mut Vec<u8>| {
        if out.len() > start {
            out.push(b'|');
        }
    };
    for (bit, name) in NAMED_FLAGS {
        if flg & bit != 0 {
            sep(out);
            out.extend_from_slice(name.as_bytes());
        }
    }
    let huge_log2 = (flg >> SHM_HUGE_SHIFT) & SHM_HUGE_MASK;
    if huge_log2 != 0 {
        sep(out);
        write_huge_size(out, huge_log2);
    }
    const KNOWN: u32 = MODE_BITS
        | IPC_CREAT
        | IPC_EXCL
        | SHM_HUGETLB
        | SHM_NORESERVE
        | (SHM_HUGE_MASK << SHM_HUGE_SHIFT);
    let unknown = flg & !KNOWN;
    if unknown != 0 {
        sep(out);
        write_hex(out, unknown as u64, 0);
    }
    if out.len() == start {
        out.push(b'-');
    }
}

/// SHM_HUGE_2MB, SHM_HUGE_1GB, SHM_HUGE_64KB ...: the kernel's names for
/// 2^log2 bytes.
fn write_huge_size(out: &mut Vec<u8>, log2: u32) {
    out.extend_from_slice(b"SHM_HUGE_");
    let (value, unit) = match log2 {
        0..=9 => (1u64 << log2, "B"),
        10..=19 => (1 << (log2 - 10), "KB"),
        20..=29 => (1 << (log2 - 20), "MB"),
        30..=39 => (1 << (log2 - 30), "GB"),
        _ => (1 << (log2 - 40), "TB"),
    };
    write_decimal(out, value);
    out.extend_from_slice(unit.as_bytes());
}

/// The permission mode: the low 9 bits of shmflg.
pub fn mode(shmflg: i32) -> u32 {
    shmflg as u32 & MODE_BITS
}

/// `0%03o`, as ls and ipcs show permissions.
pub fn write_mode(out: &mut Vec<u8>, mode: u32) {
    out.push(b'0');
    for shift in [6, 3, 0] {
        out.push(b'0' + ((mode >> shift) & 7) as u8);
    }
}

/// Errno numbers the table of names covers (Linux's end at 133).
const KNOWN_ERRNOS: usize = 200;

/// `ENOENT` ... by number, `ERRNO_<n>` where the number has no name.
fn errno_table() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        (0..KNOWN_ERRNOS as i32)
            .map(|n| match Errno::from_raw(n) {
                Errno::UnknownErrno => format!("ERRNO_{n}"),
                errno => format!("{errno:?}"),
            })
            .collect()
    })
}

/// The errno name of a failed call (`ENOENT`), or `None` on success.
/// Numbers without a name come out as `ERRNO_<n>`.
pub fn errno_name(ret: i64) -> Option<&'static str> {
    if ret >= 0 {
        return None;
    }
    let errno = ret.unsigned_abs();
    match errno_table().get(errno as usize) {
        Some(name) => Some(name.as_str()),
        // Out of the table: leak one string per distinct odd value; the
        // kernel returns only a handful.
        None => Some(Box::leak(format!("ERRNO_{errno}").into_boxed_str())),
    }
}

/// The number of an errno name as [`errno_name`] gives it (`ENOENT`, or
/// `ERRNO_<n>`).
pub fn errno_number(name: &str) -> Option<u32> {
    if let Some(n) = name.strip_prefix("ERRNO_").and_then(|n| n.parse().ok()) {
        return Some(n);
    }
    errno_table()
        .iter()
        .position(|known| known == name)
        .map(|n| n as u32)
}

/// The errnos that have names, by name.
pub fn errno_names() -> Vec<&'static str> {
    errno_table()
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|name| !name.starts_with("ERRNO_"))
        .collect()
}

/// `0x%08x`, as ipcs prints keys; IPC_PRIVATE is 0x00000000.
pub fn write_key(out: &mut Vec<u8>, key: i32) {
    write_hex(out, key as u32 as u64, 8);
}

/// `0x%0*x`.
pub fn write_hex(out: &mut Vec<u8>, value: u64, min_digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (((64 - value.leading_zeros()) as usize).div_ceil(4))
        .max(min_digits)
        .max(1);
    out.extend_from_slice(b"0x");
    for i in (0..digits).rev() {
        out.push(HEX[((value >> (i * 4)) & 0xf) as usize]);
    }
}

pub fn write_decimal(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Escapes a process name for any output: `\` becomes `\\`; printable ASCII
/// and valid UTF-8 of printable characters stay; every other byte (controls,
/// escape sequences, invalid or truncated UTF-8, invisible format characters)
/// becomes `\xNN`. The result never holds a tab, newline or escape.
pub fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    // Nearly every name is plain ASCII: copy it whole.
    if bytes
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) && b != b'\\')
    {
        out.extend_from_slice(bytes);
        return;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, invalid) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, i) = rest.split_at(e.valid_up_to());
                // SAFETY-free: from_utf8 said these bytes are valid.
                (std::str::from_utf8(v).unwrap_or_default(), i)
            }
        };
        for c in valid.chars() {
            let mut utf8 = [0u8; 4];
            let encoded = c.encode_utf8(&mut utf8).as_bytes();
            if c == '\\' {
                out.extend_from_slice(b"\\\\");
            } else if is_printable(c) {
                out.extend_from_slice(encoded);
            } else {
                encoded.iter().for_each(|&b| write_byte_escape(out, b));
            }
        }
        if let Some((&bad, tail)) = invalid.split_first() {
            write_byte_escape(out, bad);
            rest = tail;
        } else {
            rest = &[];
        }
    }
}

fn write_byte_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[(byte >> 4) as usize],
        HEX[(byte & 0xf) as usize],
    ]);
}

/// Printable: not a control character, and not one of the invisible format
/// or separator characters that can reorder or hide text on a terminal
/// (bidi overrides, zero-width characters, line and paragraph separators).
fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !c.is_control()
        && !matches!(c,
            '\u{00ad}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061c}'
            | '\u{06dd}'
            | '\u{070f}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}')
}

/// How the time of an event is shown.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMode {
    /// Local wall-clock time, as TZ (or /etc/localtime) says.
    Local,
    Utc,
    /// Seconds since the tracer started.
    Relative,
}

/// The time of an event as text: RFC 3339 with nanoseconds, in UTC
/// (`...Z`) or in local time (`...+05:30`), or seconds since the start
/// (`12.000000001`). Remembers the date and time of the last second it
/// formatted, since events come in bursts within one second.
pub struct TimeFormatter {
    mode: TimeMode,
    start_unix_ns: u64,
    cached_second: Option<u64>,
    prefix: String,
    suffix: String,
}

impl TimeFormatter {
    /// `start_unix_ns`: the start, for relative times.
    pub fn new(mode: TimeMode, start_unix_ns: u64) -> TimeFormatter {
        TimeFormatter {
            mode,
            start_unix_ns,
            cached_second: None,
            prefix: String::new(),
            suffix: String::new(),
        }
    }

    /// The text of the time `unix_ns` (nanoseconds since the epoch).
    pub fn write(&mut self, out: &mut String, unix_ns: u64) {
        let ns = match self.mode {
            TimeMode::Relative => unix_ns.saturating_sub(self.start_unix_ns),
            TimeMode::Local | TimeMode::Utc => unix_ns,
        };
        let second = ns / 1_000_000_000;
        if self.cached_second != Some(second) {
            let mut prefix = Vec::with_capacity(20);
            let mut suffix = Vec::with_capacity(6);
            match self.mode {
                TimeMode::Utc => {
                    write_date_time(&mut prefix, second as i64);
                    suffix.push(b'Z');
                }
                TimeMode::Local => {
                    let offset = local_offset(second);
                    write_date_time(&mut prefix, second as i64 + i64::from(offset));
                    write_utc_offset(&mut suffix, offset);
                }
                TimeMode::Relative => write_decimal(&mut prefix, second),
            }
            self.prefix = String::from_utf8(prefix).unwrap_or_default();
            self.suffix = String::from_utf8(suffix).unwrap_or_default();
            self.cached_second = Some(second);
        }
        out.push_str(&self.prefix);
        out.push('.');
        // 1 followed by the nine digits, zero-padded: skip the 1.
        let mut digits = itoa::Buffer::new();
        out.push_str(&digits.format(1_000_000_000 + ns % 1_000_000_000)[1..]);
        out.push_str(&self.suffix);
    }
}

/// Seconds east of UTC of local time at `unix_seconds`, from the C
/// library, which reads TZ (a zone name, or a POSIX rule such as
/// `XYZ-5:30` that needs no zone files) or else /etc/localtime. It reads
/// files only, no NSS: safe in the static binary.
fn local_offset(unix_seconds: u64) -> i32 {
    use nix::libc;
    let time = unix_seconds as libc::time_t;
    // SAFETY: localtime_r writes only the tm it is given; an all-zero tm
    // is a valid value to start from.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff as i32
}

/// `+05:30`, `-08:00`, `+00:00` (RFC 3339 offsets; seconds dropped).
fn write_utc_offset(out: &mut Vec<u8>, offset_seconds: i32) {
    out.push(if offset_seconds < 0 { b'-' } else { b'+' });
    let minutes = offset_seconds.unsigned_abs() / 60;
    write_padded(out, u64::from(minutes / 60), 2);
    out.push(b':');
    write_padded(out, u64::from(minutes % 60), 2);
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch (plus an offset).
fn write_date_time(out: &mut Vec<u8>, unix_seconds: i64) {
    let (year, month, day) = civil_from_days(unix_seconds.div_euclid(86_400));
    let secs_of_day = unix_seconds.rem_euclid(86_400) as u64;
    write_padded(out, year as u64, 4);
    out.push(b'-');
    write_padded(out, month as u64, 2);
    out.push(b'-');
    write_padded(out, day as u64, 2);
    out.push(b'T');
    write_padded(out, secs_of_day / 3600, 2);
    out.push(b':');
    write_padded(out, secs_of_day / 60 % 60, 2);
    out.push(b':');
    write_padded(out, secs_of_day % 60, 2);
}

fn write_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value).as_bytes();
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(digits);
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn flags(shmflg: i32) -> String {
        text(|o| write_flags(o, shmflg))
    }

    #[test]
    fn named_flags() {
        assert_eq!(flags(0o600), "-");
        assert_eq!(flags(0), "-");
        assert_eq!(flags(0o1600), "IPC_CREAT");
        assert_eq!(flags(0o3666), "IPC_CREAT|IPC_EXCL");
        assert_eq!(
            flags(0o17000),
            "IPC_CREAT|IPC_EXCL|SHM_HUGETLB|SHM_NORESERVE"
        );
    }

    #[test]
    fn huge_page_sizes_by_mask() {
        let hugetlb = 0o4000;
        assert_eq!(flags(hugetlb | (21 << 26)), "SHM_HUGETLB|SHM_HUGE_2MB");
        // 1 GB is 30 << 26: a bit test for 2MB (21 = 0b10101) would also match.
        assert_eq!(flags(hugetlb | (30 << 26)), "SHM_HUGETLB|SHM_HUGE_1GB");
        assert_eq!(flags(hugetlb | (16 << 26)), "SHM_HUGETLB|SHM_HUGE_64KB");
        assert_eq!(flags(hugetlb | (34 << 26)), "SHM_HUGETLB|SHM_HUGE_16GB");
        assert_eq!(flags(hugetlb | (19 << 26)), "SHM_HUGETLB|SHM_HUGE_512KB");
        assert_eq!(flags(0o1000 | (63 << 26)), "IPC_CREAT|SHM_HUGE_8388608TB");
    }

    #[test]
    fn unknown_bits_as_hex() {
        assert_eq!(flags(0o1000 | 0x2000), "IPC_CREAT|0x2000");
        assert_eq!(flags(0x0200_0000 | 0o644), "0x2000000");
    }

    #[test]
    fn shmat_flags_and_shmctl_commands() {
        let shmat = |flg| text(|o| write_call_flags(o, Op::Shmat, flg));
        assert_eq!(shmat(0), "-");
        assert_eq!(shmat(0o10000), "SHM_RDONLY");
        assert_eq!(shmat(0o170000), "SHM_RDONLY|SHM_RND|SHM_REMAP|SHM_EXEC");
        assert_eq!(shmat(0o10001), "SHM_RDONLY|0x1");
        // The same bit is SHM_NORESERVE for shmget.
        assert_eq!(
            text(|o| write_call_flags(o, Op::Shmget, 0o10000)),
            "SHM_NORESERVE"
        );
        let cmd = |c| text(|o| write_shmctl_cmd(o, c));
        assert_eq!(cmd(0), "IPC_RMID");
        assert_eq!(cmd(0x102), "IPC_STAT|IPC_64");
        assert_eq!(cmd(11), "SHM_LOCK");
        assert_eq!(cmd(15), "SHM_STAT_ANY");
        assert_eq!(cmd(99), "99");
    }

    #[test]
    fn modes() {
        assert_eq!(mode(0o1600), 0o600);
        assert_eq!(text(|o| write_mode(o, 0o600)), "0600");
        assert_eq!(text(|o| write_mode(o, 0o7)), "0007");
        assert_eq!(text(|o| write_mode(o, 0o777)), "0777");
        assert_eq!(text(|o| write_mode(o, 0)), "0000");
    }

    #[test]
    fn relative_times_and_offsets() {
        let start = 1_795_710_367_123_456_789;
        let mut tf = TimeFormatter::new(TimeMode::Relative, start);
        assert_eq!(time(&mut tf, start), "0.000000000");
        assert_eq!(time(&mut tf, start + 1_500_000_001), "1.500000001");
        assert_eq!(time(&mut tf, start + 86_400_000_000_000), "86400.000000000");
        assert_eq!(time(&mut tf, start - 1), "0.000000000");
        let offset = |seconds| text(|o| write_utc_offset(o, seconds));
        assert_eq!(offset(0), "+00:00");
        assert_eq!(offset(5 * 3600 + 1800), "+05:30");
        assert_eq!(offset(-(8 * 3600)), "-08:00");
        assert_eq!(offset(-(3 * 3600 + 1800)), "-03:30");
    }

    #[test]
    fn errno_numbers_by_name() {
        assert_eq!(errno_number("ENOENT"), Some(2));
        assert_eq!(errno_number("EOVERFLOW"), Some(75));
        assert_eq!(errno_number("ERRNO_41"), Some(41));
        assert_eq!(errno_number("ENOSUCH"), None);
        let names = super::errno_names();
        assert!(names.contains(&"EACCES") && names.contains(&"EIDRM"));
        assert!(names.iter().all(|n| errno_number(n).is_some()));
        assert!(!names.iter().any(|n| n.starts_with("ERRNO_")));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(12345), None);
        assert_eq!(errno_name(-2), Some("ENOENT"));
        assert_eq!(errno_name(-17), Some("EEXIST"));
        assert_eq!(errno_name(-22), Some("EINVAL"));
        assert_eq!(errno_name(-28), Some("ENOSPC"));
        assert_eq!(errno_name(-12), Some("ENOMEM"));
        assert_eq!(errno_name(-13), Some("EACCES"));
        assert_eq!(errno_name(-1), Some("EPERM"));
        assert_eq!(errno_name(-512), Some("ERRNO_512"));
        assert_eq!(errno_name(-199), Some("ERRNO_199"));
    }

    #[test]
    fn keys_and_hex() {
        assert_eq!(text(|o| write_key(o, 0)), "0x00000000");
        assert_eq!(text(|o| write_key(o, 0x1234)), "0x00001234");
        assert_eq!(text(|o| write_key(o, -1)), "0xffffffff");
        assert_eq!(text(|o| write_hex(o, 0, 0)), "0x0");
        assert_eq!(text(|o| write_hex(o, 0o1600, 0)), "0x380");
    }

    #[test]
    fn escaping() {
        let esc = |b: &[u8]| text(|o| write_escaped(o, b));
        assert_eq!(esc(b"postgres"), "postgres");
        assert_eq!(esc(b"a\tb\nc"), "a\\x09b\\x0ac");
        assert_eq!(esc(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(esc(b"back\\slash"), "back\\\\slash");
        assert_eq!(esc("caf\u{e9}".as_bytes()), "caf\u{e9}");
        // Truncated UTF-8 at the end of a 15-byte comm, and a lone byte.
        assert_eq!(esc(b"ab\xc3"), "ab\\xc3");
        assert_eq!(esc(b"\xffok"), "\\xffok");
        // C1 control and a bidi override are not printable.
        assert_eq!(esc("x\u{85}y".as_bytes()), "x\\xc2\\x85y");
        assert_eq!(esc("\u{202e}abc".as_bytes()), "\\xe2\\x80\\xaeabc");
        assert_eq!(esc(b"\x7f"), "\\x7f");
        assert_eq!(esc(b""), "");
    }

    fn time(tf: &mut TimeFormatter, ns: u64) -> String {
        let mut out = String::new();
        tf.write(&mut out, ns);
        out
    }

    #[test]
    fn rfc3339() {
        let mut tf = TimeFormatter::new(TimeMode::Utc, 0);
        let t = time;
        assert_eq!(t(&mut tf, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            t(&mut tf, 1_795_710_367_123_456_789),
            "2026-11-26T16:26:07.123456789Z"
        );
        // Same second again comes from the cache; the next second does not.
        assert_eq!(
            t(&mut tf, 1_795_710_367_000_000_001),
            "2026-11-26T16:26:07.000000001Z"
        );
        assert_eq!(
            t(&mut tf, 1_795_710_368_000_000_000),
            "2026-11-26T16:26:08.000000000Z"
        );
        assert_eq!(
            t(&mut tf, 951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            t(&mut tf, 4_107_542_399_999_999_999),
            "2100-02-28T23:59:59.999999999Z"
        );
    }
}
