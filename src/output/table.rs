//! The default: an aligned table for people, like bcc's snoop tools. By
//! default the columns people look at first, laid out to fit 100 terminal
//! columns for a shmget; `--wide` adds more, `--columns` chooses. Every
//! column but `details` (what each call names, the widest) has a width: a
//! longer value is cut with a marker, so that later columns stay in line,
//! and a line longer than the terminal is cut the same way, so that no row
//! wraps. Nothing is cut in `--wide`.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::columns::Column;
use crate::decode::TimeMode;
use crate::record::Record;

/// What a cut value or line ends with.
const CUT_MARKER: char = '…';

/// The default columns: 88 terminal columns before the details. The result
/// before the arguments, as bcc's shmsnoop has it: in 80 columns the
/// result is seen, the size cut.
pub const DEFAULT_COLUMNS: [Column; 9] = {
    use Column::*;
    [Time, Pid, Comm, Call, Ret, Errno, Key, Size, Details]
};

/// `--wide`: every column the table showed before `--columns` existed.
pub const WIDE_COLUMNS: [Column; 15] = {
    use Column::*;
    [
        Time, Pid, Tid, Uid, Comm, Abi, Call, Key, Size, Mode, Ret, Errno, Origin, Container,
        Details,
    ]
};

pub struct Table {
    columns: Vec<Column>,
    time: TimeMode,
    wide: bool,
    /// Lines are cut to this many terminal columns; None: not cut.
    max_width: Option<usize>,
}

impl Table {
    /// `columns`: as `--columns` chose, else the default or wide set.
    pub fn new(
        columns: Option<&[Column]>,
        wide: bool,
        time: TimeMode,
        max_width: Option<usize>,
    ) -> Table {
        let columns = match columns {
            Some(columns) => columns.to_vec(),
            None if wide => WIDE_COLUMNS.to_vec(),
            None => DEFAULT_COLUMNS.to_vec(),
        };
        Table {
            columns,
            time,
            wide,
            max_width: max_width.filter(|_| !wide),
        }
    }

    fn header(&self, column: Column) -> Cow<'static, str> {
        match (column, self.time) {
            (Column::Time, TimeMode::Local) => "TIME".into(),
            (Column::Time, TimeMode::Utc) => "TIME(UTC)".into(),
            (Column::Time, TimeMode::Relative) => "TIME(s)".into(),
            _ => column.name().to_ascii_uppercase().into(),
        }
    }

    /// (width, right-aligned); a column is never narrower than its header.
    fn width(&self, column: Column) -> (usize, bool) {
        let (width, right) = match (column, self.time, self.wide) {
            (Column::Time, TimeMode::Relative, false) => (10, true),
            (Column::Time, TimeMode::Relative, true) => (13, true),
            // HH:MM:SS, as bcc's tools show it; with microseconds in --wide.
            (Column::Time, _, true) => (15, false),
            (Column::LastTime, _, _) => return self.width(Column::Time),
            _ => column.table_width(),
        };
        (width.max(self.header(column).width()), right)
    }

    /// The time as the table shows it, from the record's text: the time of
    /// day of an RFC 3339 time (`2026-11-26T18:01:25.216415123Z` ->
    /// `18:01:25`), or relative seconds to the millisecond.
    fn time_cell<'r>(&self, time: &'r str) -> &'r str {
        let end = match (self.time, self.wide) {
            (TimeMode::Relative, false) => time.len().saturating_sub(6),
            (TimeMode::Relative, true) => time.len().saturating_sub(3),
            (_, false) => 19,
            (_, true) => 26,
        };
        let start = if self.time == TimeMode::Relative {
            0
        } else {
            11
        };
        time.get(start..end).unwrap_or(time)
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        let cells: Vec<Cow<str>> = self.columns.iter().map(|c| self.header(*c)).collect();
        self.write_row(out, cells.iter().map(|c| c.as_ref()));
    }

    pub fn write_record(&self, out: &mut Vec<u8>, record: &Record) {
        let cells: Vec<String> = self
            .columns
            .iter()
            .map(|&column| match column {
                Column::Time => self.time_cell(record.time).to_string(),
                Column::LastTime if record.last_time.is_some() => self
                    .time_cell(record.last_time.unwrap_or_default())
                    .to_string(),
                _ => {
                    let mut text = Vec::with_capacity(32);
                    column.write_cell(record, &mut text);
                    // Column texts are ASCII or escaped, valid UTF-8.
                    String::from_utf8(text).unwrap_or_default()
                }
            })
            .collect();
        self.write_row(out, cells.iter().map(String::as_str));
    }

    fn write_row<'c>(&self, out: &mut Vec<u8>, cells: impl Iterator<Item = &'c str>) {
        let mut line = String::with_capacity(128);
        let last = self.columns.len().saturating_sub(1);
        for (i, (column, cell)) in self.columns.iter().zip(cells).enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let (width, right) = self.width(*column);
            let cell = if self.wide || *column == Column::Details {
                Cow::Borrowed(cell)
            } else {
                cut(cell, width)
            };
            let pad = width.saturating_sub(cell.width());
            if right {
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.push_str(&cell);
            if !right && i < last {
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let line = match self.max_width {
            Some(max) => cut(line.trim_end(), max),
            None => Cow::Borrowed(line.trim_end()),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// `text` in at most `width` terminal columns: as it is, or cut with the
/// marker as its last column.
fn cut(text: &str, width: usize) -> Cow<'_, str> {
    if text.width() <= width {
        return Cow::Borrowed(text);
    }
    let mut kept = String::with_capacity(width + 3);
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w >= width {
            break;
        }
        kept.push(c);
        used += w;
    }
    if width > 0 {
        kept.push(CUT_MARKER);
    }
    Cow::Owned(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_values_end_with_the_marker() {
        assert_eq!(cut("postgres", 15), "postgres");
        assert_eq!(cut("0123456789abcdef", 15), "0123456789abcd…");
        assert_eq!(cut("0123456789abcdef", 15).width(), 15);
        // Wide characters take two columns.
        assert_eq!(cut("日本語のプロセス", 7), "日本語…");
        assert_eq!(cut("abc", 0), "");
    }
}
