//! COPY's three data formats, both ways: PostgreSQL's text format (tab-separated, `\N` for
//! NULL, backslash escapes), CSV (quoted fields that may span lines, a header line) and binary
//! (a signature, then length-prefixed fields in each type's binary format).
//!
//! The decoder is incremental: it takes the client's CopyData messages as they come, cut
//! anywhere, and returns the complete records so far with their line numbers.

use tessera_types::binary::encode_binary;
use tessera_types::{DataType, Value};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Binary,
}

/// COPY's options, with PostgreSQL's defaults for the format.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub format: Format,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

impl Options {
    pub fn new(format: Format) -> Options {
        Options {
            format,
            delimiter: if format == Format::Csv { b',' } else { b'\t' },
            null: if format == Format::Csv {
                String::new()
            } else {
                "\\N".into()
            },
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }
}

/// One field as decoded: text (text and CSV formats) or bytes (binary); `None` is NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Null,
    Text(String),
    Bytes(Vec<u8>),
}

/// A complete record and the line it started on (the tuple number in binary format).
pub type Record = (u64, Vec<Field>);

const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

fn bad_copy(message: impl Into<String>) -> Error {
    Error::Exec(tessera_types::ExecError::other("22P04", message))
}

fn not_utf8(line: u64) -> Error {
    Error::Exec(tessera_types::ExecError::other(
        "22021",
        format!("invalid byte sequence for encoding \"UTF8\" on line {line}"),
    ))
}

pub struct Decoder {
    options: Options,
    buf: Vec<u8>,
    /// Where unconsumed input starts in `buf`.
    pos: usize,
    /// The line the next record starts on.
    line: u64,
    header_pending: bool,
    /// The end-of-data marker (`\.`, or the binary trailer) was seen.
    ended: bool,
    binary_header_done: bool,
}

impl Decoder {
    pub fn new(options: Options) -> Decoder {
        let header_pending = options.header;
        Decoder {
            options,
            buf: Vec::new(),
            pos: 0,
            line: 1,
            header_pending,
            ended: false,
            binary_header_done: false,
        }
    }

    /// The line the next record starts on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Takes more input and appends the records it completes to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Record>) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        if self.pos > 0 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        match self.options.format {
            Format::Text => self.text_records(out),
            Format::Csv => self.csv_records(out),
            Format::Binary => self.binary_records(out),
        }
    }

    /// The input is complete: a last line without its newline is a record too.
    pub fn finish(&mut self, out: &mut Vec<Record>) -> Result<()> {
        if self.ended || self.pos >= self.buf.len() {
            return Ok(());
        }
        match self.options.format {
            Format::Binary => Err(bad_copy("unexpected EOF in COPY data")),
            _ => {
                self.buf.push(b'\n');
                self.feed(&[], out)?;
                if !self.ended && self.pos < self.buf.len() {
                    return Err(bad_copy(format!("unterminated CSV quoted field on line {}", self.line)));
                }
                Ok(())
            }
        }
    }

    fn text_records(&mut self, out: &mut Vec<Record>) -> Result<()> {
        while let Some(nl) = self.buf[self.pos..].iter().position(|b| *b == b'\n') {
            let mut line = &self.buf[self.pos..self.pos + nl];
            self.pos += nl + 1;
            let number = self.line;
            self.line += 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line == b"\\." {
                self.ended = true;
                return Ok(());
            }
            if std::mem::take(&mut self.header_pending) {
                continue;
            }
            let fields = split_text(line, &self.options, number)?;
            out.push((number, fields));
        }
        Ok(())
    }

    fn csv_records(&mut self, out: &mut Vec<Record>) -> Result<()> {
        loop {
            let start = self.pos;
            let Some((fields, consumed, newlines)) = split_csv(&self.buf[start..], &self.options, self.line)? else {
                return Ok(());
            };
            self.pos += consumed;
            let number = self.line;
            self.line += newlines;
            let raw = &self.buf[start..start + consumed];
            if raw.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)) == Some(b"\\.".as_slice()) {
                self.ended = true;
                return Ok(());
            }
            if std::mem::take(&mut self.header_pending) {
                continue;
            }
            out.push((number, fields));
        }
    }

    fn binary_records(&mut self, out: &mut Vec<Record>) -> Result<()> {
        let take_i32 = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if !self.binary_header_done {
            let avail = &self.buf[self.pos..];
            if avail.len() < BINARY_SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &avail[..BINARY_SIGNATURE.len()] != BINARY_SIGNATURE {
                return Err(bad_copy("COPY file signature not recognized"));
            }
            let ext = take_i32(&avail[BINARY_SIGNATURE.len() + 4..]);
            if ext < 0 {
                return Err(bad_copy("invalid COPY file header (missing length)"));
            }
            let header = BINARY_SIGNATURE.len() + 8 + ext as usize;
            if avail.len() < header {
                return Ok(());
            }
            self.pos += header;
            self.binary_header_done = true;
        }
        loop {
            let avail = &self.buf[self.pos..];
            if avail.len() < 2 {
                return Ok(());
            }
            let count = i16::from_be_bytes([avail[0], avail[1]]);
            if count == -1 {
                self.ended = true;
                return Ok(());
            }
            if count < 0 {
                return Err(bad_copy(format!(
                    "invalid field count {count} in COPY tuple {}",
                    self.line
                )));
            }
            let mut at = 2;
            let mut fields = Vec::with_capacity(count as usize);
            for _ in 0..count {
                if avail.len() < at + 4 {
                    return Ok(());
                }
                let len = take_i32(&avail[at..]);
                at += 4;
                if len == -1 {
                    fields.push(Field::Null);
                    continue;
                }
                if len < 0 {
                    return Err(bad_copy(format!(
                        "invalid field length {len} in COPY tuple {}",
                        self.line
                    )));
                }
                let len = len as usize;
                if avail.len() < at + len {
                    return Ok(());
                }
                fields.push(Field::Bytes(avail[at..at + len].to_vec()));
                at += len;
            }
            self.pos += at;
            out.push((self.line, fields));
            self.line += 1;
        }
    }
}

/// Splits a text-format line into fields, undoing the backslash escapes.
fn split_text(line: &[u8], o: &Options, number: u64) -> Result<Vec<Field>> {
    let mut fields = Vec::new();
    let mut raw_start = 0;
    let mut value: Vec<u8> = Vec::new();
    let mut i = 0;
    let finish = |raw: &[u8], value: &mut Vec<u8>| -> Result<Field> {
        if raw == o.null.as_bytes() {
            value.clear();
            return Ok(Field::Null);
        }
        String::from_utf8(std::mem::take(value))
            .map(Field::Text)
            .map_err(|_| not_utf8(number))
    };
    while i < line.len() {
        let b = line[i];
        if b == o.delimiter {
            fields.push(finish(&line[raw_start..i], &mut value)?);
            i += 1;
            raw_start = i;
            continue;
        }
        if b == b'\\' && i + 1 < line.len() {
            let c = line[i + 1];
            i += 2;
            match c {
                b'b' => value.push(8),
                b'f' => value.push(12),
                b'n' => value.push(b'\n'),
                b'r' => value.push(b'\r'),
                b't' => value.push(b'\t'),
                b'v' => value.push(11),
                b'x' => {
                    let hex: Vec<u8> = line[i..]
                        .iter()
                        .take(2)
                        .take_while(|h| h.is_ascii_hexdigit())
                        .copied()
                        .collect();
                    if hex.is_empty() {
                        value.push(b'x');
                    } else {
                        i += hex.len();
                        value.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap_or("0"), 16).unwrap_or(0));
                    }
                }
                b'0'..=b'7' => {
                    let mut n = u32::from(c - b'0');
                    let mut k = 0;
                    while k < 2 && i < line.len() && (b'0'..=b'7').contains(&line[i]) {
                        n = n * 8 + u32::from(line[i] - b'0');
                        i += 1;
                        k += 1;
                    }
                    value.push((n & 0xff) as u8);
                }
                other => value.push(other),
            }
            continue;
        }
        value.push(b);
        i += 1;
    }
    fields.push(finish(&line[raw_start..], &mut value)?);
    Ok(fields)
}

/// Splits one CSV record off the front of `buf`: its fields, the bytes it took (through its
/// newline) and the newlines in it. `None` when the record is not complete yet.
fn split_csv(buf: &[u8], o: &Options, number: u64) -> Result<Option<(Vec<Field>, usize, u64)>> {
    let mut fields = Vec::new();
    let mut value: Vec<u8> = Vec::new();
    let mut quoted_field = false;
    let mut in_quotes = false;
    let mut newlines = 0;
    let mut i = 0;
    let finish = |value: &mut Vec<u8>, quoted: bool| -> Result<Field> {
        if !quoted && value.as_slice() == o.null.as_bytes() {
            value.clear();
            return Ok(Field::Null);
        }
        String::from_utf8(std::mem::take(value))
            .map(Field::Text)
            .map_err(|_| not_utf8(number))
    };
    while i < buf.len() {
        let b = buf[i];
        if in_quotes {
            let next = buf.get(i + 1).copied();
            if b == o.escape && (next == Some(o.quote) || (o.escape != o.quote && next == Some(o.escape))) {
                value.extend(next);
                i += 2;
                continue;
            }
            if b == o.quote && o.escape == o.quote && next.is_none() {
                // A quote at the end of the input: closing, or the first of a doubled one?
                return Ok(None);
            }
            if b == o.quote {
                in_quotes = false;
                i += 1;
                continue;
            }
            if b == b'\n' {
                newlines += 1;
            }
            value.push(b);
            i += 1;
            continue;
        }
        match b {
            b'\n' => {
                if value.last() == Some(&b'\r') && !quoted_field {
                    value.pop();
                }
                fields.push(finish(&mut value, quoted_field)?);
                return Ok(Some((fields, i + 1, newlines + 1)));
            }
            b if b == o.delimiter => {
                fields.push(finish(&mut value, quoted_field)?);
                quoted_field = false;
            }
            b if b == o.quote => {
                in_quotes = true;
                quoted_field = true;
            }
            b'\r' if buf.get(i + 1) == Some(&b'\n') => {}
            b => value.push(b),
        }
        i += 1;
    }
    Ok(None)
}

/// The header of a binary COPY stream.
pub fn binary_header() -> Vec<u8> {
    let mut out = BINARY_SIGNATURE.to_vec();
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out
}

/// The end of a binary COPY stream.
pub fn binary_trailer() -> Vec<u8> {
    (-1i16).to_be_bytes().to_vec()
}

/// The header line of CSV output (column names).
pub fn csv_header(names: &[String], o: &Options) -> Vec<u8> {
    let fields: Vec<Option<String>> = names.iter().cloned().map(Some).collect();
    let mut out = Vec::new();
    csv_line(&fields, o, &mut out);
    out
}

fn csv_line(fields: &[Option<String>], o: &Options, out: &mut Vec<u8>) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(o.delimiter);
        }
        match f {
            None => out.extend_from_slice(o.null.as_bytes()),
            Some(s) => {
                let needs_quotes = s.is_empty() && o.null.is_empty()
                    || s == &o.null
                    || s.bytes()
                        .any(|b| b == o.delimiter || b == o.quote || b == b'\n' || b == b'\r')
                    || s == "\\.";
                if needs_quotes {
                    out.push(o.quote);
                    for b in s.bytes() {
                        if b == o.quote || b == o.escape {
                            out.push(o.escape);
                        }
                        out.push(b);
                    }
                    out.push(o.quote);
                } else {
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }
    out.push(b'\n');
}

/// Appends one row in the chosen format.
pub fn encode_row(row: &[Value], types: &[DataType], o: &Options, out: &mut Vec<u8>) {
    match o.format {
        Format::Binary => {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for (v, ty) in row.iter().zip(types) {
                if v.is_null() {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    continue;
                }
                let v = tessera_types::cast::cast(v.clone(), *ty, true).unwrap_or_else(|_| v.clone());
                let mut bytes = Vec::new();
                encode_binary(&v, &mut bytes);
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(&bytes);
            }
        }
        Format::Csv => {
            let fields: Vec<Option<String>> = row.iter().map(Value::to_text).collect();
            csv_line(&fields, o, out);
        }
        Format::Text => {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(o.delimiter);
                }
                match v.to_text() {
                    None => out.extend_from_slice(o.null.as_bytes()),
                    Some(s) => {
                        for b in s.bytes() {
                            match b {
                                b'\\' => out.extend_from_slice(b"\\\\"),
                                b'\n' => out.extend_from_slice(b"\\n"),
                                b'\r' => out.extend_from_slice(b"\\r"),
                                b'\t' if o.delimiter == b'\t' => out.extend_from_slice(b"\\t"),
                                b if b == o.delimiter => {
                                    out.push(b'\\');
                                    out.push(b);
                                }
                                b => out.push(b),
                            }
                        }
                    }
                }
            }
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(o: Options, chunks: &[&[u8]]) -> Result<Vec<Record>> {
        let mut d = Decoder::new(o);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    fn text(s: &str) -> Field {
        Field::Text(s.into())
    }

    #[test]
    fn text_format_unescapes_and_reads_nulls_across_chunk_boundaries() {
        let out = decode(
            Options::new(Format::Text),
            &[b"1\ta\\tb\t\\N\n2\t", b"x\\\\y\tz\n\\.\nignored\n"],
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                (1, vec![text("1"), text("a\tb"), Field::Null]),
                (2, vec![text("2"), text("x\\y"), text("z")]),
            ]
        );
    }

    #[test]
    fn csv_quotes_span_lines_and_header_is_skipped() {
        let mut o = Options::new(Format::Csv);
        o.header = true;
        let out = decode(o, &[b"id,name\n1,\"a,\n", b"b\"\"c\"\n2,,\"\"\n3,last"]).unwrap();
        assert_eq!(
            out,
            vec![
                (2, vec![text("1"), text("a,\nb\"c")]),
                (4, vec![text("2"), Field::Null, text("")]),
                (5, vec![text("3"), text("last")]),
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_is_an_error_at_the_end() {
        let e = decode(Options::new(Format::Csv), &[b"1,\"open\n"]).unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
    }

    #[test]
    fn rows_round_trip_through_every_format() {
        let types = [DataType::Int4, DataType::Text, DataType::Bool];
        let row = vec![Value::Int4(7), Value::Text("a\tb,\"c\"\n".into()), Value::Null];
        for format in [Format::Text, Format::Csv, Format::Binary] {
            let o = Options::new(format);
            let mut bytes = if format == Format::Binary {
                binary_header()
            } else {
                Vec::new()
            };
            encode_row(&row, &types, &o, &mut bytes);
            if format == Format::Binary {
                bytes.extend(binary_trailer());
            }
            let out = decode(o, &[&bytes]).unwrap();
            assert_eq!(out.len(), 1, "{format:?}");
            let fields = &out[0].1;
            assert_eq!(fields[2], Field::Null, "{format:?}");
            match format {
                Format::Binary => assert_eq!(fields[0], Field::Bytes(7i32.to_be_bytes().to_vec())),
                _ => assert_eq!(fields[1], text("a\tb,\"c\"\n"), "{format:?}"),
            }
        }
    }
}
