//! `--tsv`: a header, then one record per line, every column in order,
//! tab-separated. No column can hold a tab or newline: text fields are
//! escaped when decoded, everything else is generated.

use super::columns::Column;
use crate::record::Record;

pub fn write_header(out: &mut Vec<u8>) {
    for (i, column) in Column::ALL.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        out.extend_from_slice(column.name().as_bytes());
    }
    out.push(b'\n');
}

pub fn write_record(out: &mut Vec<u8>, record: &Record) {
    for (i, column) in Column::ALL.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        column.write(record, out);
    }
    out.push(b'\n');
}
