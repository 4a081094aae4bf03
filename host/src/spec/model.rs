//! The pipeline spec as typed YAML. Every struct denies unknown fields; enums are externally
//! tagged (`- lake: {...}`) so parse errors keep their line and column.

use serde::Deserialize;

use super::units::{ByteSize, Dur};
pub use crate::sinks::SinkSpec;
pub use crate::sinks::kafka::{KafkaFormatSpec, KafkaSinkSpec};
pub use crate::sinks::lake::{Compression, LakeFormat, LakeSinkSpec};
pub use crate::sinks::live::LiveSinkSpec;
pub use crate::sinks::postgres::PostgresSinkSpec;
pub use crate::sinks::stdout::StdoutSinkSpec;
pub use crate::sources::SourceSpec;
pub use crate::sources::file::FileSourceSpec;
pub use crate::sources::http::HttpSourceSpec;
pub use crate::sources::kafka::{KafkaSourceSpec, StartFrom};

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
