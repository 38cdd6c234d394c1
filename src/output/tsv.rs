//! `--tsv`: a header, then one record per line, the columns in order
//! (every column, or those `--columns` chose), tab-separated. No column can
//! hold a tab or newline: text fields are escaped when decoded, everything
//! else is generated.

use super::columns::Column;
use crate::record::Record;

/// Writes records, reusing the text of every column but the time while the
/// records repeat in every other field (`Record::generation`): rendering 29
/// columns anew was most of the cost of a line in a flood of identical
/// calls, where the reader must keep up with millions a second.
pub struct TsvWriter {
    columns: Vec<Column>,
    /// The generation of the record `between_times` was rendered from.
    generation: Option<u64>,
    /// The line's text before, between and after its columns that
    /// change from line to line (`Column::per_line`).
    between_times: Vec<Vec<u8>>,
}

impl TsvWriter {
    /// `columns`: as `--columns` chose, else all of them.
    pub fn new(columns: Option<&[Column]>) -> TsvWriter {
        TsvWriter {
            columns: columns.unwrap_or(&Column::ALL).to_vec(),
            generation: None,
            between_times: vec![],
        }
    }

    pub fn write_header(&self, out: &mut Vec<u8>) {
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            out.extend_from_slice(column.name().as_bytes());
        }
        out.push(b'\n');
    }

    pub fn write_record(&mut self, out: &mut Vec<u8>, record: &Record) {
        if self.generation != Some(record.generation) {
            self.between_times.clear();
            let mut text = Vec::with_capacity(256);
            for (i, column) in self.columns.iter().enumerate() {
                if i > 0 {
                    text.push(b'\t');
                }
                if column.per_line() {
                    self.between_times.push(std::mem::take(&mut text));
                } else {
                    column.write(record, &mut text);
                }
            }
            self.between_times.push(text);
            self.generation = Some(record.generation);
        }
        let mut per_line = self.columns.iter().filter(|c| c.per_line());
        for (i, text) in self.between_times.iter().enumerate() {
            if i > 0 {
                if let Some(column) = per_line.next() {
                    column.write(record, out);
                }
            }
            out.extend_from_slice(text);
        }
        out.push(b'\n');
    }
}
