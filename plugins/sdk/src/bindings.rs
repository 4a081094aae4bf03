//! The guest side of `wit/plugin.wit` (`sluice:plugin@0.2`): the only `wit_bindgen::generate!`
//! sites of that version (one per world), the conversions between the generated types and
//! the SDK's, and the [`crate::export_transform!`] / [`crate::export_window!`] macros. (The
//! guest side of `sluice:plugin@0.1` is the `sluice-plugin-sdk-v0_1` crate: wit-bindgen's
//! exported macros are named after the world, so two versions cannot share a crate.)
//!
//! Both worlds share one copy of the `types` interface (generated with the `transform`
//! world), so the conversions exist once. With `pub_export_macro`, each
//! generate! site only embeds its world's imports (none); the full world is embedded where a
//! plugin invokes the export macro, so a plugin's component carries exactly the world it
//! exports.

mod glue;

pub use glue::{
    Instance, transform_init, transform_metadata, transform_process, window_advance, window_init,
    window_metadata, window_process, window_restore, window_snapshot,
};

/// The conversions of schemas and metadata between the SDK and the generated `wit` types in
/// scope (the same for both contract versions).
#[macro_export]
#[doc(hidden)]
macro_rules! __conversions {
    () => {
        fn field_type_from_wit(t: wit::FieldType) -> FieldType {
            match t {
                wit::FieldType::Str => FieldType::Str,
                wit::FieldType::Int64 => FieldType::Int64,
                wit::FieldType::Float64 => FieldType::Float64,
                wit::FieldType::Boolean => FieldType::Boolean,
                wit::FieldType::Timestamp => FieldType::Timestamp,
                wit::FieldType::Bytes => FieldType::Bytes,
            }
        }

        fn field_type_to_wit(t: FieldType) -> wit::FieldType {
            match t {
                FieldType::Str => wit::FieldType::Str,
                FieldType::Int64 => wit::FieldType::Int64,
                FieldType::Float64 => wit::FieldType::Float64,
                FieldType::Boolean => wit::FieldType::Boolean,
                FieldType::Timestamp => wit::FieldType::Timestamp,
                FieldType::Bytes => wit::FieldType::Bytes,
            }
        }

        fn schema_from_wit(fields: Vec<wit::Field>) -> Vec<Field> {
            let conv = |f: wit::Field| Field {
                name: f.name,
                ty: field_type_from_wit(f.ty),
                nullable: f.nullable,
            };
            fields.into_iter().map(conv).collect()
        }

        fn schema_to_wit(fields: Vec<Field>) -> Vec<wit::Field> {
            let conv = |f: Field| wit::Field {
                name: f.name,
                ty: field_type_to_wit(f.ty),
                nullable: f.nullable,
            };
            fields.into_iter().map(conv).collect()
        }

        fn metadata_to_wit(m: Metadata) -> wit::Metadata {
            wit::Metadata {
                name: m.name,
                version: m.version,
                description: m.description,
                config_schema: m.config_schema,
                sample_config: m.sample_config,
            }
        }
    };
}
#[doc(hidden)]
pub use __conversions as conversions;

/// Bindings of the `transform` world (and of the shared `types` interface).
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod transform {
    wit_bindgen::generate!({
        world: "transform",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_plugin_sdk::bindings::transform",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        generate_unused_types: true,
    });
}

/// Bindings of the `window` world.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod window {
    wit_bindgen::generate!({
        world: "window",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sluice_plugin_sdk::bindings::window",
        runtime_path: "::sluice_plugin_sdk::__private::wit_bindgen::rt",
        with: {
            "sluice:plugin/types@0.2.0": ::sluice_plugin_sdk::bindings::types,
        },
    });
}

/// The generated types of the `types` interface, shared by both worlds.
pub use transform::sluice::plugin::types;

/// Exports a type implementing [`crate::Transform`] as the component's `transform` world.
/// Expands to nothing when not compiling for wasm32.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            use $crate::bindings::types as __t;
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<
                    ::std::option::Option<$crate::bindings::Instance<$ty>>,
                > =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct SluiceTransform;
            impl $crate::bindings::transform::Guest for SluiceTransform {
                fn metadata() -> __t::Metadata {
                    $crate::bindings::transform_metadata::<$ty>()
                }
                fn init(
                    config: ::std::string::String,
                    input: ::std::vec::Vec<__t::Field>,
                ) -> ::std::result::Result<::std::vec::Vec<__t::Field>, ::std::string::String>
                {
                    $crate::bindings::transform_init::<$ty>(&INSTANCE, config, input)
                }
                fn process(
                    input: __t::Batch,
                ) -> ::std::result::Result<__t::Output, ::std::string::String> {
                    $crate::bindings::transform_process::<$ty>(&INSTANCE, input)
                }
            }
            $crate::bindings::transform::export!(
                SluiceTransform with_types_in $crate::bindings::transform
            );
        };
    };
}

/// Exports a type implementing [`crate::Window`] as the component's `window` world.
/// Expands to nothing when not compiling for wasm32.
#[macro_export]
macro_rules! export_window {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            use ::std::{result::Result, string::String, vec::Vec};
            use $crate::bindings::types as __t;
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<
                    ::std::option::Option<$crate::bindings::Instance<$ty>>,
                > =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct SluiceWindow;
            impl $crate::bindings::window::Guest for SluiceWindow {
                fn metadata() -> __t::Metadata {
                    $crate::bindings::window_metadata::<$ty>()
                }
                fn init(
                    config: String,
                    input: Vec<__t::Field>,
                    window: __t::WindowSpec,
                ) -> Result<Vec<__t::Field>, String> {
                    $crate::bindings::window_init::<$ty>(&INSTANCE, config, input, window)
                }
                fn process(input: __t::Batch, watermark: i64) -> Result<__t::Output, String> {
                    $crate::bindings::window_process::<$ty>(&INSTANCE, input, watermark)
                }
                fn advance(watermark: i64) -> Result<__t::Output, String> {
                    $crate::bindings::window_advance::<$ty>(&INSTANCE, watermark)
                }
                fn snapshot() -> Vec<u8> {
                    $crate::bindings::window_snapshot::<$ty>(&INSTANCE)
                }
                fn restore(state: Vec<u8>) -> Result<(), String> {
                    $crate::bindings::window_restore::<$ty>(&INSTANCE, state)
                }
            }
            $crate::bindings::window::export!(
                SluiceWindow with_types_in $crate::bindings::window
            );
        };
    };
}
