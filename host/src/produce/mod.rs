//! `sluice produce`: replays MTA turnstile files (weekly `.csv`/`.csv.gz` files or message
//! files with one message per line) into a Kafka topic, in event-time or file order.
//!
//! Each record's value is the raw line, its key the values of `--key` fields (`station` by
//! default, see `fields`), so that a pipeline keyed the same way can run as parallel tasks;
//! the order and
//! what is skipped is described in `input`. All files are held in memory, decompressed, so
//! that several weeks can be merged by event time. The topic is created when missing.

mod fields;
mod input;
mod pace;
mod sender;
mod topic;

pub use fields::KeyFields;
pub use sender::MAX_BATCH_RECORDS;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// What `sluice produce` sends, and where.
#[derive(Clone, Debug)]
pub struct ProduceArgs {
    /// Bootstrap servers, already resolved (see [`crate::broker::resolve`]).
    pub brokers: String,
    pub topic: String,
    pub files: Vec<PathBuf>,
    pub order: Order,
    /// Cap in records per second; `None` (or 0) sends as fast as the broker takes them.
    pub rate: Option<u64>,
    /// Partitions of the topic when it has to be created (an existing topic is kept as is).
    pub partitions: i32,
    /// What each message is keyed by.
    pub key: KeyFields,
}

/// Send order of the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// All lines of all files merged and stably sorted by event time.
    #[default]
    EventTime,
    /// Files in the given order, lines in file order.
    File,
}

impl FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "event-time" => Ok(Order::EventTime),
            "file" => Ok(Order::File),
            other => Err(format!(
                "unknown order `{other}`; use `event-time` or `file`"
            )),
        }
    }
}

/// What one file contributed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    pub path: PathBuf,
    pub records: u64,
    pub skipped_headers: u64,
    pub skipped_blank: u64,
}

/// The outcome of a successful [`run`]: every record counted here was confirmed by the broker.
#[derive(Clone, Debug)]
pub struct ProduceReport {
    pub topic: String,
    /// Partition count of the topic (created or found).
    pub partitions: i32,
    pub records: u64,
    /// Sum of the record values (the raw lines, without line ends).
    pub bytes: u64,
    pub skipped_headers: u64,
    pub skipped_blank: u64,
    /// Records without a readable event time, produced where their predecessor was.
    pub untimed: u64,
    /// From start to the last confirmation, reading included.
    pub elapsed: Duration,
    /// Time spent sending and waiting for confirmations.
    pub sending: Duration,
    pub files: Vec<FileReport>,
}

impl fmt::Display for ProduceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.records as f64 / self.sending.as_secs_f64().max(1e-9);
        write!(
            f,
            "Produced {} records ({:.1} MB) from {} file(s) to topic {} in {:.2} s \
             ({rate:.0} records/s while sending); skipped {} header and {} blank line(s); \
             {} record(s) had no readable event time.",
            self.records,
            self.bytes as f64 / 1e6,
            self.files.len(),
            self.topic,
            self.elapsed.as_secs_f64(),
            self.skipped_headers,
            self.skipped_blank,
            self.untimed,
        )
    }
}

/// Errors of `sluice produce` that a user can cause; each is one paragraph with the fix.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(
        "No input files were given. Pass one or more MTA weekly files (.csv or .csv.gz) or text files with one message per line."
    )]
    NoFiles,
    #[error(
        "Cannot read input file {path}: {source}. Check the path; inputs are MTA weekly files (.csv or .csv.gz) or text files with one message per line."
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "Input file {path} starts like gzip but cannot be decompressed: {source}. The file is probably truncated or damaged; fetch it again."
    )]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "Input file {path} is not a text file (it contains NUL bytes). Pass MTA weekly files (.csv or .csv.gz) or text files with one message per line."
    )]
    Binary { path: PathBuf },
    #[error(
        "The Kafka brokers at {brokers} did not answer: {reason}. Check --brokers and that the broker is running, or use `--brokers embedded` to run a local one."
    )]
    Unreachable { brokers: String, reason: String },
    #[error(
        "Cannot create topic {topic}: {reason}. Create it yourself or check the broker's permissions and limits."
    )]
    Topic { topic: String, reason: String },
    #[error(
        "Record {place} was not delivered to topic {topic}: {reason}. Nothing after it is guaranteed to be in the topic; check the broker's log, then produce again."
    )]
    Delivery {
        place: String,
        topic: String,
        reason: String,
    },
    #[error("Cannot configure the Kafka client: {reason}.")]
    Client { reason: String },
}

/// Produces the files of `args` into its topic and returns once every record is confirmed.
/// The work runs on a blocking thread (file reading and the rdkafka producer are synchronous).
pub async fn run(args: &ProduceArgs) -> anyhow::Result<ProduceReport> {
    let args = args.clone();
    Ok(tokio::task::spawn_blocking(move || run_blocking(&args)).await??)
}

fn run_blocking(args: &ProduceArgs) -> Result<ProduceReport, ProduceError> {
    let started = Instant::now();
    if args.files.is_empty() {
        return Err(ProduceError::NoFiles);
    }
    let files = read_all(&args.files)?;
    let plan = input::plan(&files, args.order);
    let partitions = topic::ensure(&args.brokers, &args.topic, args.partitions)?;
    tracing::info!(
        "Producing {} records from {} file(s) into topic {}.",
        plan.lines.len(),
        files.len(),
        args.topic
    );
    let sending = Instant::now();
    sender::send_all(
        &args.brokers,
        &args.topic,
        &files,
        &plan.lines,
        args.rate,
        &args.key,
    )?;
    let sending = sending.elapsed();
    Ok(report(
        args,
        partitions,
        &files,
        &plan,
        started.elapsed(),
        sending,
    ))
}

/// Reads all files, in parallel (decompression dominates).
fn read_all(paths: &[PathBuf]) -> Result<Vec<input::InputFile>, ProduceError> {
    std::thread::scope(|scope| {
        let readers: Vec<_> = paths
            .iter()
            .map(|path| scope.spawn(|| input::read_file(path)))
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn report(
    args: &ProduceArgs,
    partitions: i32,
    files: &[input::InputFile],
    plan: &input::Plan,
    elapsed: Duration,
    sending: Duration,
) -> ProduceReport {
    let mut per_file: Vec<FileReport> = files
        .iter()
        .zip(plan.headers.iter().zip(&plan.blanks))
        .map(|(file, (&skipped_headers, &skipped_blank))| FileReport {
            path: file.path.clone(),
            records: 0,
            skipped_headers,
            skipped_blank,
        })
        .collect();
    let mut bytes = 0;
    for line in &plan.lines {
        per_file[line.file as usize].records += 1;
        bytes += (line.end - line.start) as u64;
    }
    ProduceReport {
        topic: args.topic.clone(),
        partitions,
        records: plan.lines.len() as u64,
        bytes,
        skipped_headers: plan.headers.iter().sum(),
        skipped_blank: plan.blanks.iter().sum(),
        untimed: plan.untimed,
        elapsed,
        sending,
        files: per_file,
    }
}
