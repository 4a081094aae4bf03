//! The only host-side bindings of `wit/plugin.wit`: one `bindgen!` per world, the shared
//! `types` interface generated once and reused by the second world.

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
    Batch, Failure, Field, FieldType, Metadata, Output, WindowSpec,
};
pub use window_world::Window;
