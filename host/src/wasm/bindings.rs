//! The only host-side bindings of `wit/`: one `bindgen!` per world of each contract version
//! the host runs, `sluice:plugin@0.2` (`wit/plugin.wit`, column batches) and
//! `sluice:plugin@0.1` (`wit/0.1/plugin.wit`, packed rows); each version's shared `types`
//! interface is generated once and reused by its second world.

/// `sluice:plugin@0.1`: batches as packed rows.
pub mod v0_1 {
    mod transform_world {
        wasmtime::component::bindgen!({
            path: "../wit/0.1",
            world: "transform",
        });
    }

    mod window_world {
        wasmtime::component::bindgen!({
            path: "../wit/0.1",
            world: "window",
            with: { "sluice:plugin/types": super::transform_world::sluice::plugin::types },
        });
    }

    pub use transform_world::Transform;
    pub use transform_world::sluice::plugin::types::{
        Batch, Failure, Field, FieldType, Metadata, Output, WindowSpec,
    };
    pub use window_world::Window;
}

/// `sluice:plugin@0.2`: batches as columns in one arena.
pub mod v0_2 {
    mod transform_world {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "transform",
        });
    }

    mod window_world {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "window",
            with: { "sluice:plugin/types": super::transform_world::sluice::plugin::types },
        });
    }

    pub use transform_world::Transform;
    pub use transform_world::sluice::plugin::types::{
        Batch, Column, Dictionary, Field, FieldType, Metadata, Output, WindowSpec,
    };
    pub use window_world::Window;
}

// The host's own row batches are the 0.1 packed layout.
pub use v0_1::{Batch, Failure, Metadata, Output, WindowSpec};
