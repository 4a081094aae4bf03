//! Input side of `sluice produce`: reads the files (plain or gzip, detected by magic bytes),
//! splits them into lines, skips headers and blank lines, and puts the lines in send order.
//!
//! With [`Order::EventTime`] all lines of all files are merged and stable-sorted by event
//! time, so ties keep input order (file order, then line order). A line whose event time
//! cannot be read takes the time of the previous line of its file (lines before the first
//! readable one take that first readable time; a file with no readable time at all sorts
//! first). It is still produced, right after its predecessor, so the pipeline dead-letters it.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::fields::{self, Fields};
use super::{Order, ProduceError};

/// One input file, decompressed into memory.
pub(crate) struct InputFile {
    pub(crate) path: PathBuf,
    pub(crate) data: Vec<u8>,
}

/// One record to produce: a line of one of the input files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) file: u32,
    /// 1-based line number within the file.
    pub(crate) number: u32,
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Event time used for ordering (milliseconds; inherited when unreadable).
    pub(crate) time: i64,
}

/// Lines of all files in send order, with what was skipped.
#[derive(Default)]
pub(crate) struct Plan {
    pub(crate) lines: Vec<Line>,
    pub(crate) headers: Vec<u64>,
    pub(crate) blanks: Vec<u64>,
    /// Lines whose event time could not be read (produced anyway).
    pub(crate) untimed: u64,
}

/// Reads one file fully, decompressing it when it starts with the gzip magic bytes.
pub(crate) fn read_file(path: &Path) -> Result<InputFile, ProduceError> {
    let raw = std::fs::read(path).map_err(|source| ProduceError::Read {
        path: path.to_owned(),
        source,
    })?;
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| ProduceError::Gzip {
                path: path.to_owned(),
                source,
            })?;
        out
    } else {
        raw
    };
    if data[..data.len().min(8192)].contains(&0) {
        return Err(ProduceError::Binary {
            path: path.to_owned(),
        });
    }
    Ok(InputFile {
        path: path.to_owned(),
        data,
    })
}

/// Splits every file into lines and orders them for sending.
pub(crate) fn plan(files: &[InputFile], order: Order) -> Plan {
    let mut plan = Plan::default();
    for (index, file) in files.iter().enumerate() {
        let (headers, blanks) = scan_file(index as u32, &file.data, &mut plan);
        plan.headers.push(headers);
        plan.blanks.push(blanks);
    }
    if order == Order::EventTime {
        plan.lines.sort_by_key(|line| line.time); // stable: ties keep input order
    }
    plan
}

/// Appends the records of one file to `plan`; returns (header lines, blank lines) skipped.
fn scan_file(file: u32, data: &[u8], plan: &mut Plan) -> (u64, u64) {
    let first = plan.lines.len();
    let (mut headers, mut blanks, mut times) = (0, 0, Vec::new());
    let mut start = usize::from(data.starts_with(b"\xEF\xBB\xBF")) * 3;
    for (number, raw) in data[start..].split(|&b| b == b'\n').enumerate() {
        let (line_start, end) = (start, start + raw.len());
        start = end + 1;
        let text = raw.strip_suffix(b"\r").unwrap_or(raw);
        if text.trim_ascii().is_empty() {
            blanks += u64::from(line_start < data.len());
            continue;
        }
        let split = Fields::split(text);
        if fields::is_header(&split) {
            headers += 1;
            continue;
        }
        times.push(fields::event_time_ms(&split));
        let line = Line {
            file,
            number: number as u32 + 1,
            start: line_start,
            end: line_start + text.len(),
            time: 0,
        };
        plan.lines.push(line);
    }
    plan.untimed += times.iter().filter(|t| t.is_none()).count() as u64;
    for (line, time) in plan.lines[first..].iter_mut().zip(fill_times(&times)) {
        line.time = time;
    }
    (headers, blanks)
}

/// Replaces unreadable times by the previous readable one (leading ones by the first).
fn fill_times(times: &[Option<i64>]) -> Vec<i64> {
    let first = times.iter().flatten().next().copied().unwrap_or(i64::MIN);
    let mut last = first;
    times
        .iter()
        .map(|time| {
            last = time.unwrap_or(last);
            last
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ca: &str, date: &str, time: &str) -> String {
        format!("{ca},R051,02-00-00,59 ST,NQR456W,BMT,{date},{time},REGULAR,1,2\n")
    }

    fn file(text: &str) -> InputFile {
        InputFile {
            path: PathBuf::from("f"),
            data: text.as_bytes().to_vec(),
        }
    }

    fn text_of<'a>(files: &'a [InputFile], line: &Line) -> &'a str {
        std::str::from_utf8(&files[line.file as usize].data[line.start..line.end]).unwrap()
    }

    #[test]
    fn headers_and_blank_lines_are_skipped_and_counted() {
        let text = format!(
            ",CA,UNIT,SCP\r\n0,{}\r\n\n  \n",
            row("A1", "01/01/2024", "00:00:00").trim()
        );
        let files = [file(&text)];
        let plan = plan(&files, Order::File);
        assert_eq!(
            (plan.headers[0], plan.blanks[0], plan.lines.len()),
            (1, 2, 1)
        );
        assert!(
            text_of(&files, &plan.lines[0]).ends_with(",1,2"),
            "CR is stripped"
        );
        assert_eq!(plan.lines[0].number, 2);
    }

    #[test]
    fn event_time_order_is_stable_across_files() {
        let a = row("A1", "01/02/2024", "00:00:00") + &row("A2", "01/01/2024", "04:00:00");
        let b = row("B1", "01/01/2024", "04:00:00") + &row("B2", "01/01/2024", "00:00:00");
        let files = [file(&a), file(&b)];
        let plan = plan(&files, Order::EventTime);
        let order: Vec<&str> = plan
            .lines
            .iter()
            .map(|l| &text_of(&files, l)[..2])
            .collect();
        assert_eq!(order, ["B2", "A2", "B1", "A1"]);
    }

    #[test]
    fn file_order_keeps_input_order() {
        let a = row("A1", "01/02/2024", "00:00:00") + &row("A2", "01/01/2024", "04:00:00");
        let files = [file(&a), file(&row("B1", "01/01/2024", "00:00:00"))];
        let plan = plan(&files, Order::File);
        let order: Vec<&str> = plan
            .lines
            .iter()
            .map(|l| &text_of(&files, l)[..2])
            .collect();
        assert_eq!(order, ["A1", "A2", "B1"]);
    }

    #[test]
    fn unreadable_times_follow_their_predecessor() {
        let a = "garbage first\n".to_owned()
            + &row("A1", "01/03/2024", "00:00:00")
            + "garbage middle\n"
            + &row("A2", "01/01/2024", "00:00:00");
        let files = [file(&a)];
        let plan = plan(&files, Order::EventTime);
        let order: Vec<&str> = plan
            .lines
            .iter()
            .map(|l| &text_of(&files, l)[..9])
            .collect();
        assert_eq!(order, ["A2,R051,0", "garbage f", "A1,R051,0", "garbage m"]);
        assert_eq!(plan.untimed, 2);
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let (plain, packed) = (dir.path().join("a.csv.gz"), dir.path().join("b.dat"));
        std::fs::write(&plain, "plain text\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"packed text\n").unwrap();
        std::fs::write(&packed, gz.finish().unwrap()).unwrap();
        assert_eq!(read_file(&plain).unwrap().data, b"plain text\n");
        assert_eq!(read_file(&packed).unwrap().data, b"packed text\n");
        std::fs::write(&plain, [0u8, 1, 2]).unwrap();
        assert!(matches!(
            read_file(&plain),
            Err(ProduceError::Binary { .. })
        ));
    }
}
