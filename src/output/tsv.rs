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

/// Writes records, reusing the text after the time while the records
/// repeat in every other field (`Record::generation`): rendering 29
/// columns anew was most of the cost of a line in a flood of identical
/// calls, where the reader must keep up with millions a second.
#[derive(Default)]
pub struct TsvWriter {
    /// The generation of the record `rest` was rendered from.
    generation: Option<u64>,
    rest: Vec<u8>,
}

impl TsvWriter {
    pub fn write_record(&mut self, out: &mut Vec<u8>, record: &Record) {
        Column::Time.write(record, out);
        if self.generation != Some(record.generation) {
            self.rest.clear();
            for column in &Column::ALL[1..] {
                self.rest.push(b'\t');
                column.write(record, &mut self.rest);
            }
            self.generation = Some(record.generation);
        }
        out.extend_from_slice(&self.rest);
        out.push(b'\n');
    }
}
