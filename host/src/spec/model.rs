//! The pipeline spec as typed YAML. Every struct denies unknown fields; enums are externally
//! tagged (`- lake: {...}`) so parse errors keep their line and column.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::units::{ByteSize, Dur};

/// One pipeline file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// `version: 1`
    pub version: u32,
    /// `name: turnstile` (letters, digits, `-` and `_`)
    pub name: String,
    /// `source: { kafka: {...} }`
    pub source: SourceSpec,
    /// `steps: [ - transform: {...}, - window: {...} ]`
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// `sinks: [ - lake: {...}, - stdout: {} ]`
    pub sinks: Vec<SinkSpec>,
    /// `errors: { dlq: {...} }`
    #[serde(default)]
    pub errors: ErrorsSpec,
    /// `batch: { max_records: 8192, max_wait: 100ms }`
    #[serde(default)]
    pub batch: BatchSpec,
    /// `checkpoint: { url: file://./state, interval: 10s }` (default: every 10 s under the
    /// host's state folder)
    #[serde(default)]
    pub checkpoint: CheckpointSpec,
    /// `parallelism: 4`: tasks this host runs the pipeline as, each over some source
    /// partitions with its own plugin instances and state (default: one per core, never more
    /// than the partitions held).
    #[serde(default)]
    pub parallelism: Option<usize>,
}

/// `checkpoint: { url: file://./state, interval: 10s }`: where and how often the pipeline's
/// source offsets, window state and watermarks are saved together.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// `url: file://./state` (any object store URL; default `<state folder>/checkpoints`)
    #[serde(default)]
    pub url: Option<String>,
    /// `interval: 10s` (time between checkpoints; one is always written at shutdown)
    #[serde(default = "default_checkpoint_interval")]
    pub interval: Dur,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self {
            url: None,
            interval: default_checkpoint_interval(),
        }
    }
}

fn default_checkpoint_interval() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}

/// `source:` — exactly one kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// `kafka: {...}`
    Kafka(KafkaSourceSpec),
    /// `file: {...}`
    File(FileSourceSpec),
    /// `http: {...}` (webhook ingest)
    Http(HttpSourceSpec),
}

/// `source: { http: { listen: 127.0.0.1:8090, path: /ingest/turnstile } }` — records POSTed
/// one per line or as a JSON array; answered only once processed and written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceSpec {
    /// `listen: 127.0.0.1:8090`
    #[serde(default = "default_http_listen")]
    pub listen: std::net::SocketAddr,
    /// `path: /ingest/turnstile`
    pub path: String,
    /// `max_body: 4MiB`
    #[serde(default)]
    pub max_body: Option<ByteSize>,
    /// `max_records_per_s: 50000` (over it: 429)
    #[serde(default)]
    pub max_records_per_s: Option<u64>,
}

fn default_http_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8090))
}

/// `source: { kafka: {...} }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceSpec {
    /// `brokers: "host:9092,host2:9092"` or `brokers: embedded`
    pub brokers: String,
    /// `topic: turnstile-stream`
    pub topic: String,
    /// `group: sluice-turnstile` (consumer group; default `sluice-<pipeline name>`)
    #[serde(default)]
    pub group: Option<String>,
    /// `start: earliest | latest` (where a group without committed offsets starts)
    #[serde(default)]
    pub start: StartFrom,
    /// `properties: { "fetch.max.bytes": "52428800" }` (extra librdkafka settings)
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// `key: [station]`: the parsed fields the topic's messages are keyed by, so that every
    /// record with the same values is in the same partition (what `sluice produce --key`
    /// writes). A window may then run as parallel tasks when its `group_by` covers this key.
    #[serde(default)]
    pub key: Vec<String>,
}

/// `start: earliest | latest`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// From the beginning of each partition.
    #[default]
    Earliest,
    /// Only records produced after the pipeline starts.
    Latest,
}

/// `source: { file: {...} }` — replays files, one record per line.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSpec {
    /// `paths: [data/week.csv.gz]` (plain or gzip text, read in order)
    pub paths: Vec<String>,
}

/// One step of the chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// `transform: {...}`
    Transform(TransformSpec),
    /// `window: {...}`
    Window(WindowStepSpec),
}

/// `- transform: { plugin: name@^0.1, config: {...} }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// `plugin: turnstile-parse@^0.1`
    pub plugin: String,
    /// `config: {...}` (passed to the plugin's `init` as JSON)
    #[serde(default)]
    pub config: serde_json::Value,
    /// `limits: { memory: 256MiB, call_timeout: 5s, max_output: 256MiB }`
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// `- window: {...}`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowStepSpec {
    /// `plugin: turnstile-window@^0.1`
    pub plugin: String,
    /// `event_time: timestamp` (a `timestamp` field of the incoming rows)
    pub event_time: String,
    /// `size: 4h`
    pub size: Dur,
    /// `slide: 1h` (hopping windows; default: `size`, tumbling)
    #[serde(default)]
    pub slide: Option<Dur>,
    /// `delay: 4h` (watermark = max event time − delay)
    #[serde(default)]
    pub delay: Option<Dur>,
    /// `late: drop | dlq`
    #[serde(default)]
    pub late: Late,
    /// `emit: { early: 1m }` (early results for live sinks, at most this often)
    #[serde(default)]
    pub emit: Option<EmitSpec>,
    /// `config: {...}`
    #[serde(default)]
    pub config: serde_json::Value,
    /// `limits: {...}`
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// `emit: { early: 1m }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitSpec {
    /// `early: 1m` — send the current value of open windows to live sinks this often; the
    /// other sinks still get only final results.
    pub early: Dur,
}

/// `late: drop | dlq`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Late {
    /// Count late records and drop them.
    #[default]
    Drop,
    /// Send late records to the dead-letter destination.
    Dlq,
}

/// `limits: { memory: 256MiB, call_timeout: 5s, max_output: 256MiB, on_violation: dlq }`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// `memory: 256MiB` (linear memory cap)
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// `call_timeout: 5s` (time per call)
    #[serde(default)]
    pub call_timeout: Option<Dur>,
    /// `max_output: 256MiB` (bytes of rows one call may return)
    #[serde(default)]
    pub max_output: Option<ByteSize>,
    /// `on_violation: dlq | restart | fail` (what a trap or a broken limit does; default
    /// `dlq` for a transform, `restart` for a window)
    #[serde(default)]
    pub on_violation: Option<OnViolation>,
}

/// `on_violation: dlq | restart | fail`
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnViolation {
    /// `dlq`: a transform's batch is bisected on fresh instances until the culprit records
    /// are found; they are dead-lettered and the rest flows on in order. A window cannot be
    /// bisected once its state changed, so for a window `dlq` means `restart`.
    Dlq,
    /// `restart`: a transform gets a fresh instance and the batch is retried once (then
    /// `dlq`); a window makes the pipeline restart from its last checkpoint.
    Restart,
    /// `fail`: the pipeline stops, failed, naming the stage, plugin, limit and record.
    Fail,
}

/// One sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// `lake: {...}`
    Lake(LakeSinkSpec),
    /// `stdout: {...}`
    Stdout(StdoutSinkSpec),
    /// `live: {}` (the dashboard and `/api/v1/pipelines/{name}/live`)
    Live(LiveSinkSpec),
    /// `postgres: {...}` (the warehouse)
    Postgres(PostgresSinkSpec),
    /// `kafka: {...}`
    Kafka(KafkaSinkSpec),
}

/// `- postgres: { url: "${WAREHOUSE_URL:-}", table: turnstile_windows, key: [station, window_start] }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkSpec {
    /// `url: postgres://user@host:5432/db` (empty: the sink is skipped, with a log line)
    pub url: String,
    /// `table: turnstile_windows` (created if missing)
    pub table: String,
    /// `key: [station, window_start]` (upsert key: a replay never duplicates a row)
    pub key: Vec<String>,
}

/// `- kafka: { topic: turnstile-windows, format: json }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkSpec {
    /// `brokers: ...` (default: the source's)
    #[serde(default)]
    pub brokers: Option<String>,
    /// `topic: turnstile-windows` (created if missing)
    pub topic: String,
    /// `format: json | csv`
    #[serde(default)]
    pub format: KafkaFormatSpec,
    /// `key: [station, window_start]` (message key fields; default: text fields + window_start)
    #[serde(default)]
    pub key: Vec<String>,
}

/// `format: json | csv`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormatSpec {
    /// One JSON object per row.
    #[default]
    Json,
    /// One CSV line per row.
    Csv,
}

/// `- live: {}`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSinkSpec {}

/// `- lake: { url: file://./lake, format: csv, compression: gzip, partition_by: [...] }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSinkSpec {
    /// `url: file://./lake` (also `s3://`, `gs://`, `az://`, `memory://`)
    pub url: String,
    /// `format: csv`
    #[serde(default)]
    pub format: LakeFormat,
    /// `compression: gzip | none`
    #[serde(default)]
    pub compression: Compression,
    /// `partition_by: [station, window_start]` (Hive-style `field=value/` folders)
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// `retry: { max_elapsed: 5m }` (default 5m)
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

/// `format: csv`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LakeFormat {
    /// RFC 4180 CSV with a header line.
    #[default]
    Csv,
}

/// `compression: gzip | none`
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (`.csv.gz`).
    #[default]
    Gzip,
    /// None (`.csv`).
    None,
}

/// `- stdout: { format: csv }`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkSpec {}

/// `errors: { dlq: {...} }`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSpec {
    /// `dlq: { lake: {...} }` (default: `_dlq/` under the first lake sink)
    #[serde(default)]
    pub dlq: Option<DlqSpec>,
    /// `max_dead_letters: { count: 1000, per_records: 10000 }` (default: no threshold)
    #[serde(default)]
    pub max_dead_letters: Option<MaxDeadLettersSpec>,
}

/// `max_dead_letters: { count: 1000, per_records: 10000 }` — more than `count` dead letters
/// within the last `per_records` records read pauses the pipeline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxDeadLettersSpec {
    /// `count: 1000`
    pub count: u64,
    /// `per_records: 10000`
    pub per_records: u64,
}

/// `retry: { max_elapsed: 5m }` — how long a write keeps retrying while the store is
/// unavailable (exponential backoff) before the connector fails.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// `max_elapsed: 5m`
    pub max_elapsed: Dur,
}

/// Where dead letters go.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DlqSpec {
    /// `lake: { url: file://./lake, prefix: _dlq }`
    Lake(DlqLakeSpec),
    /// `kafka: { topic: turnstile-dlq }` (on the source's brokers unless `brokers:` is set)
    Kafka(DlqKafkaSpec),
}

/// `dlq: { lake: {...} }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqLakeSpec {
    /// `url: file://./lake`
    pub url: String,
    /// `prefix: _dlq`
    #[serde(default = "default_dlq_prefix")]
    pub prefix: String,
    /// `retry: { max_elapsed: 5m }` (default 5m)
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

fn default_dlq_prefix() -> String {
    "_dlq".into()
}

/// `dlq: { kafka: {...} }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqKafkaSpec {
    /// `brokers: ...` (default: the source's)
    #[serde(default)]
    pub brokers: Option<String>,
    /// `topic: turnstile-dlq`
    pub topic: String,
}

/// `batch: { max_records: 8192, max_wait: 100ms }`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// `max_records: 8192`
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// `max_wait: 100ms`
    #[serde(default = "default_max_wait")]
    pub max_wait: Dur,
}

impl Default for BatchSpec {
    fn default() -> Self {
        Self {
            max_records: default_max_records(),
            max_wait: default_max_wait(),
        }
    }
}

fn default_max_records() -> usize {
    8192
}

fn default_max_wait() -> Dur {
    Dur(std::time::Duration::from_millis(100))
}
