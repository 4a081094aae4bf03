//! The source kinds, in one place: each line names a kind's YAML key, its module's spec
//! struct and the variant of [`SourceSpec`]. The macro generates the externally tagged enum
//! the pipeline spec parses (`source: { kafka: {...} }`) and the dispatch to each kind's
//! [`SourceConfig`].

use serde::Deserialize;

use super::SourceConfig;

macro_rules! source_kinds {
    ($($(#[$doc:meta])* $variant:ident($spec:ty) = $key:literal,)*) => {
        /// `source:` of a pipeline spec: exactly one kind, tagged by its YAML key.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub enum SourceSpec {
            $($(#[$doc])* #[serde(rename = $key)] $variant($spec),)*
        }

        impl SourceSpec {
            /// The kind's YAML key (`kafka`, `file`, `http`).
            pub fn key(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $key,)*
                }
            }

            /// The kind's checks and starter.
            pub fn config(&self) -> &dyn SourceConfig {
                match self {
                    $(Self::$variant(spec) => spec,)*
                }
            }
        }

        /// Every kind's YAML key, in registry order.
        pub const KINDS: &[&str] = &[$($key,)*];
    };
}

source_kinds! {
    /// `kafka: {...}`: a topic, read by a consumer group.
    Kafka(super::kafka::KafkaSourceSpec) = "kafka",
    /// `file: {...}`: files replayed, one record per line.
    File(super::file::FileSourceSpec) = "file",
    /// `http: {...}`: a webhook endpoint.
    Http(super::http::HttpSourceSpec) = "http",
}
