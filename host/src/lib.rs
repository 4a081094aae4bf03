//! sluice: a streaming host whose transforms are sandboxed WebAssembly plugins.
//!
//! A pipeline spec (`spec`) names a source (`sources`), a chain of plugin steps run by the
//! wasm runtime (`wasm`) and sinks (`sinks`); `runtime` wires them together, tracks event
//! time and drives windows. `broker` runs the embedded Kafka-protocol broker and `produce`
//! replays MTA files into a topic. `cluster` shares API-created specs and each host's tasks
//! between the hosts of one cluster.

pub mod api;
pub mod broker;
pub mod cli;
pub mod cluster;
pub mod dlq;
pub mod kit;
pub mod live;
pub mod manager;
pub mod objects;
pub mod planner;
pub mod policy;
pub mod produce;
pub mod redact;
pub mod runtime;
pub mod sinks;
pub mod sources;
pub mod spec;
pub mod threads;
pub mod wasm;
