//! Fault injection for the crash tests, compiled only with the `failpoints` feature (which
//! `make test` enables and release builds leave out). `SLUICE_FAILPOINT` names one point:
//!
//! - `checkpoint-write:<epoch>`: die half-way through writing that checkpoint, as on a store
//!   whose writes are not atomic;
//! - `sink-written:<n>`: die right after the sinks wrote the rows of the `n`th batch with
//!   rows in this process, before any checkpoint covers them;
//! - `sink-written-at:<ms>`: the same, at the first batch with rows written once the
//!   watermark of the task that made them has reached `<ms>` (milliseconds since the Unix
//!   epoch; tasks over partitions advance on their own).
//!
//! Each logs what it does (with how far the run got) and aborts the process.

/// One fail-point, parsed from `SLUICE_FAILPOINT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    CheckpointWrite(u64),
    SinkWritten(u64),
    SinkWrittenAt(i64),
}

fn point() -> Option<Point> {
    let value = std::env::var("SLUICE_FAILPOINT").ok()?;
    parse(&value)
}

fn parse(value: &str) -> Option<Point> {
    let (name, n) = value.split_once(':')?;
    match name {
        "checkpoint-write" => n.parse().ok().map(Point::CheckpointWrite),
        "sink-written" => n.parse().ok().map(Point::SinkWritten),
        "sink-written-at" => n.parse().ok().map(Point::SinkWrittenAt),
        _ => None,
    }
}

/// Whether to crash while writing checkpoint `epoch`.
pub fn checkpoint_write(epoch: u64) -> bool {
    point() == Some(Point::CheckpointWrite(epoch))
}

/// Called after the sinks wrote the rows of a batch: the `written`th batch with rows of this
/// process, made by a task (or the pipeline's one chain) at `watermark`. Aborts when asked.
pub fn sink_written(pipeline: &str, written: u64, watermark: i64, records_in: u64) {
    let due = match point() {
        Some(Point::SinkWritten(n)) => written == n,
        Some(Point::SinkWrittenAt(at)) => watermark >= at,
        _ => false,
    };
    if due {
        tracing::error!(
            pipeline,
            "SLUICE_FAILPOINT: crashing after the sinks wrote batch {written} with rows of this \
             run, before its checkpoint (watermark_ms={watermark}, records_in={records_in})."
        );
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse_and_unknown_ones_are_none() {
        assert_eq!(parse("checkpoint-write:3"), Some(Point::CheckpointWrite(3)));
        assert_eq!(parse("sink-written:2"), Some(Point::SinkWritten(2)));
        assert_eq!(
            parse("sink-written-at:1704067200000"),
            Some(Point::SinkWrittenAt(1_704_067_200_000))
        );
        for other in ["sink-written", "nowhere:1", "sink-written:x"] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
