//! Conversions between the row schema of the SDK codec and the WIT `field` records of each
//! contract version ([`v0_1`], [`v0_2`]: the records are the same, the generated types not).

use sluice_plugin_sdk::rows::Field as RowField;

/// `to_wit` and `from_wit` for the bindings of one contract version.
macro_rules! conversions {
    ($version:ident) => {
        /// Schema conversions for this contract version.
        pub mod $version {
            use sluice_plugin_sdk::rows::{Field as RowField, FieldType as RowType};

            use crate::wasm::bindings::$version::{Field, FieldType};

            /// Host schema to WIT.
            pub fn to_wit(schema: &[RowField]) -> Vec<Field> {
                schema
                    .iter()
                    .map(|f| Field {
                        name: f.name.clone(),
                        ty: type_to_wit(f.ty),
                        nullable: f.nullable,
                    })
                    .collect()
            }

            /// WIT schema to host.
            pub fn from_wit(schema: &[Field]) -> Vec<RowField> {
                schema
                    .iter()
                    .map(|f| RowField {
                        name: f.name.clone(),
                        ty: type_from_wit(f.ty),
                        nullable: f.nullable,
                    })
                    .collect()
            }

            fn type_to_wit(ty: RowType) -> FieldType {
                match ty {
                    RowType::Str => FieldType::Str,
                    RowType::Int64 => FieldType::Int64,
                    RowType::Float64 => FieldType::Float64,
                    RowType::Boolean => FieldType::Boolean,
                    RowType::Timestamp => FieldType::Timestamp,
                    RowType::Bytes => FieldType::Bytes,
                }
            }

            fn type_from_wit(ty: FieldType) -> RowType {
                match ty {
                    FieldType::Str => RowType::Str,
                    FieldType::Int64 => RowType::Int64,
                    FieldType::Float64 => RowType::Float64,
                    FieldType::Boolean => RowType::Boolean,
                    FieldType::Timestamp => RowType::Timestamp,
                    FieldType::Bytes => RowType::Bytes,
                }
            }
        }
    };
}

conversions!(v0_1);
conversions!(v0_2);

/// A schema as `name: type` text, for messages.
pub fn describe(schema: &[RowField]) -> String {
    let fields: Vec<String> = schema
        .iter()
        .map(|f| format!("{}: {:?}", f.name, f.ty))
        .collect();
    format!("[{}]", fields.join(", "))
}
