//! The guest side of `wit/0.1/plugin.wit` (`sluice:plugin@0.1`, batches as packed rows):
//! the only `wit_bindgen::generate!` sites of that version (one per world), the glue to the
//! [`sluice_plugin_sdk::v0_1`] traits, and the [`export_transform!`] / [`export_window!`]
//! macros. For plugins not yet moved to the column layout of 0.2 (`sluice_plugin_sdk`'s
//! own macros); the host runs both. A crate of its own because wit-bindgen's exported macros
//! are named after the world, so two contract versions cannot share one crate.

#![allow(unsafe_code)]

// Lets the generated bindings name this crate by its path from plugin crates too.
extern crate self as sluice_plugin_sdk_v0_1;

mod glue;

/// Re-exports for the code the export macros generate; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

pub use glue::{
    transform_init, transform_metadata, transform_process, window_advance, window_init,
    window_metadata, window_process, window_restore, window_snapshot,
};

/// Bindings of the 0.1 `transform` world (and of its `types` interface).
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod transform {
    wit_bindgen::generate!({
        world: "transform",
        path: "../../wit/0.1",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_plugin_sdk_v0_1::transform",
        runtime_path: "::sluice_plugin_sdk_v0_1::__private::wit_bindgen::rt",
        generate_unused_types: true,
    });
}

/// Bindings of the 0.1 `window` world.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod window {
    wit_bindgen::generate!({
        world: "window",
        path: "../../wit/0.1",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_plugin_sdk_v0_1::window",
        runtime_path: "::sluice_plugin_sdk_v0_1::__private::wit_bindgen::rt",
        with: {
            "sluice:plugin/types@0.1.0": ::sluice_plugin_sdk_v0_1::types,
        },
    });
}

/// The generated types of the 0.1 `types` interface.
pub use transform::sluice::plugin::types;

/// Exports a type implementing [`sluice_plugin_sdk::v0_1::Transform`] as the component's `transform` world of
/// `sluice:plugin@0.1`.
/// Expands to nothing when not compiling for wasm32.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            use $crate::types as __t;
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct SluiceTransform;
            impl $crate::transform::Guest for SluiceTransform {
                fn metadata() -> __t::Metadata {
                    $crate::transform_metadata::<$ty>()
                }
                fn init(
                    config: ::std::string::String,
                    input: ::std::vec::Vec<__t::Field>,
                ) -> ::std::result::Result<::std::vec::Vec<__t::Field>, ::std::string::String>
                {
                    $crate::transform_init::<$ty>(&INSTANCE, config, input)
                }
                fn process(
                    input: __t::Batch,
                ) -> ::std::result::Result<__t::Output, ::std::string::String> {
                    $crate::transform_process::<$ty>(&INSTANCE, input)
                }
            }
            $crate::transform::export!(
                SluiceTransform with_types_in $crate::transform
            );
        };
    };
}

/// Exports a type implementing [`sluice_plugin_sdk::v0_1::Window`] as the component's `window` world of
/// `sluice:plugin@0.1`.
/// Expands to nothing when not compiling for wasm32.
#[macro_export]
macro_rules! export_window {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            use ::std::{result::Result, string::String, vec::Vec};
            use $crate::types as __t;
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct SluiceWindow;
            impl $crate::window::Guest for SluiceWindow {
                fn metadata() -> __t::Metadata {
                    $crate::window_metadata::<$ty>()
                }
                fn init(
                    config: String,
                    input: Vec<__t::Field>,
                    window: __t::WindowSpec,
                ) -> Result<Vec<__t::Field>, String> {
                    $crate::window_init::<$ty>(&INSTANCE, config, input, window)
                }
                fn process(input: __t::Batch, watermark: i64) -> Result<__t::Output, String> {
                    $crate::window_process::<$ty>(&INSTANCE, input, watermark)
                }
                fn advance(watermark: i64) -> Result<__t::Output, String> {
                    $crate::window_advance::<$ty>(&INSTANCE, watermark)
                }
                fn snapshot() -> Vec<u8> {
                    $crate::window_snapshot::<$ty>(&INSTANCE)
                }
                fn restore(state: Vec<u8>) -> Result<(), String> {
                    $crate::window_restore::<$ty>(&INSTANCE, state)
                }
            }
            $crate::window::export!(
                SluiceWindow with_types_in $crate::window
            );
        };
    };
}
