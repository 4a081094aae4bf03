//! The sink kinds, in one place: each line names a kind's YAML key, its module's spec struct
//! and the variant of [`SinkSpec`]. The macro generates the externally tagged enum the
//! pipeline spec parses (`- lake: {...}`, so that parse errors keep their line and column)
//! and the dispatch to each kind's [`SinkConfig`].

use serde::Deserialize;

use super::SinkConfig;

macro_rules! sink_kinds {
    ($($(#[$doc:meta])* $variant:ident($spec:ty) = $key:literal,)*) => {
        /// One sink of a pipeline spec, tagged by its kind's YAML key.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub enum SinkSpec {
            $($(#[$doc])* #[serde(rename = $key)] $variant($spec),)*
        }

        impl SinkSpec {
            /// The kind's YAML key (`lake`, `postgres`, ...).
            pub fn key(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $key,)*
                }
            }

            /// The kind's checks and builder.
            pub fn config(&self) -> &dyn SinkConfig {
                match self {
                    $(Self::$variant(spec) => spec,)*
                }
            }
        }

        /// Every kind's YAML key, in registry order.
        pub const KINDS: &[&str] = &[$($key,)*];
    };
}

sink_kinds! {
    /// `lake: {...}`: objects in a store, as CSV, Parquet or a Delta table.
    Lake(super::lake::LakeSinkSpec) = "lake",
    /// `stdout: {}`
    Stdout(super::stdout::StdoutSinkSpec) = "stdout",
    /// `live: {}` (the dashboard and `/api/v1/pipelines/{name}/live`)
    Live(super::live::LiveSinkSpec) = "live",
    /// `postgres: {...}` (the warehouse)
    Postgres(super::postgres::PostgresSinkSpec) = "postgres",
    /// `kafka: {...}`
    Kafka(super::kafka::KafkaSinkSpec) = "kafka",
}
