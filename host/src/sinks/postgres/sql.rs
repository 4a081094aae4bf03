//! SQL text of the `postgres` sink: identifier checks and quoting, the column type of each
//! field type, and the statements (table DDL, staging table, COPY, upsert). Values never
//! appear in this text: rows are COPY-encoded (see `copy`) and the pipeline name is a bound
//! parameter. Identifiers are checked (ASCII letters, digits and `_`, not starting with a
//! digit, at most 63 bytes) and then double-quoted, so their case is kept.

use sluice_plugin_sdk::rows::{Field, FieldType};

/// The load metadata column holding the pipeline name.
pub const PIPELINE_COLUMN: &str = "_sluice_pipeline";
/// The load metadata column holding when the row was last inserted or changed.
pub const LOADED_AT_COLUMN: &str = "_sluice_loaded_at";
/// The session's staging table (one per connection, emptied at each commit).
const STAGE: &str = "_sluice_stage";
/// The alias of the table in the upsert.
const TARGET: &str = "_sluice_target";
/// Field names with this prefix are reserved for the columns above.
const RESERVED_PREFIX: &str = "_sluice_";

/// Checks that `name` is a plain SQL identifier; `what` says what it names, for the message.
pub fn check_identifier(what: &str, name: &str) -> Result<(), String> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || name.len() > 63 {
        return Err(format!(
            "{what} `{name}` is not a valid identifier: use 1 to 63 ASCII letters, digits and \
             `_`, not starting with a digit"
        ));
    }
    Ok(())
}

/// `name` double-quoted (any `"` doubled, although checked identifiers have none).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column type of a field type in the table DDL.
pub fn column_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Str => "TEXT",
        FieldType::Int64 => "BIGINT",
        FieldType::Float64 => "DOUBLE PRECISION",
        FieldType::Boolean => "BOOLEAN",
        FieldType::Timestamp => "TIMESTAMP",
        FieldType::Bytes => "BYTEA",
    }
}

/// The type as PostgreSQL's `format_type` spells it for the DDL type of `ty`.
pub fn catalog_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Str => "text",
        FieldType::Int64 => "bigint",
        FieldType::Float64 => "double precision",
        FieldType::Boolean => "boolean",
        FieldType::Timestamp => "timestamp without time zone",
        FieldType::Bytes => "bytea",
    }
}

/// A checked table name, optionally schema-qualified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableName {
    /// The schema, when qualified.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// Parses `table` or `schema.table`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, name) = match parts.as_slice() {
            [name] => (None, *name),
            [schema, name] => (Some(*schema), *name),
            _ => {
                return Err(format!(
                    "table `{text}` is not valid: write `table` or `schema.table`"
                ));
            }
        };
        if let Some(schema) = schema {
            check_identifier("schema", schema)?;
        }
        check_identifier("table", name)?;
        Ok(TableName {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        })
    }

    /// The quoted, possibly qualified name for SQL text.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.name)),
            None => quote(&self.name),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The checked shape of a sink's table: its name, the row fields and the key fields.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The table.
    pub table: TableName,
    /// The row fields, one column each, in order.
    pub fields: Vec<Field>,
    /// Whether each field is part of the key.
    pub in_key: Vec<bool>,
    /// The key columns, in declared order.
    pub key: Vec<String>,
}

impl Layout {
    /// Checks the table name, the field names and the key against `schema`.
    pub fn new(table: &str, key: &[String], schema: &[Field]) -> Result<Self, String> {
        let table = TableName::parse(table)?;
        for field in schema {
            check_identifier("field", &field.name)?;
            if field.name.starts_with(RESERVED_PREFIX) {
                return Err(format!(
                    "field `{}` starts with `{RESERVED_PREFIX}`, which the postgres sink \
                     reserves for its load metadata columns; rename the field",
                    field.name
                ));
            }
        }
        let in_key = check_key(key, schema)?;
        Ok(Layout {
            table,
            fields: schema.to_vec(),
            in_key,
            key: key.to_vec(),
        })
    }

    /// `CREATE SCHEMA IF NOT EXISTS`, when the table is schema-qualified.
    pub fn create_schema(&self) -> Option<String> {
        let schema = self.table.schema.as_deref()?;
        Some(format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)))
    }

    /// The table DDL (see the module doc of the sink).
    pub fn create_table(&self) -> String {
        let mut columns: Vec<String> = self.fields.iter().map(column_ddl).collect();
        columns.push(format!("{} TEXT NOT NULL", quote(PIPELINE_COLUMN)));
        columns.push(format!(
            "{} TIMESTAMPTZ NOT NULL DEFAULT now()",
            quote(LOADED_AT_COLUMN)
        ));
        columns.push(format!("PRIMARY KEY ({})", quoted_list(&self.key)));
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    {}\n)",
            self.table.quoted(),
            columns.join(",\n    ")
        )
    }

    /// Takes a transaction-level advisory lock on the table's name. Hosts of one consumer
    /// group start together, and two concurrent `CREATE TABLE IF NOT EXISTS` of one table
    /// can both pass the check and then collide in the catalog (`pg_type_typname_nsp_index`);
    /// under the lock the second one waits, then finds the table.
    pub fn lock_table(&self) -> String {
        let name = self.table.quoted().replace('\'', "''");
        format!("SELECT pg_advisory_xact_lock(hashtext('{name}'))")
    }

    /// The session's staging table: the field columns, without constraints.
    pub fn create_stage(&self) -> String {
        let columns: Vec<String> = self
            .fields
            .iter()
            .map(|f| format!("{} {}", quote(&f.name), column_type(f.ty)))
            .collect();
        format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS",
            quote(STAGE),
            columns.join(", ")
        )
    }

    /// The binary COPY of the rows (see `copy::encode`) into the staging table.
    pub fn copy_stage(&self) -> String {
        format!(
            "COPY pg_temp.{} ({}) FROM STDIN (FORMAT binary)",
            quote(STAGE),
            quoted_list(self.fields.iter().map(|f| &f.name))
        )
    }

    /// Moves the staged rows (one per key) into the table; an existing row is updated only
    /// when a value differs. `$1` is the pipeline name. Returns one row: how many existing
    /// rows were replaced with other values (a result written twice with different values).
    pub fn upsert(&self) -> String {
        let columns = quoted_list(self.fields.iter().map(|f| &f.name));
        let key = quoted_list(&self.key);
        let mut changing: Vec<String> = self.values().map(|f| quote(&f.name)).collect();
        changing.push(quote(PIPELINE_COLUMN));
        let set: Vec<String> = changing
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .chain([format!("{} = now()", quote(LOADED_AT_COLUMN))])
            .collect();
        let old: Vec<String> = changing.iter().map(|c| format!("{TARGET}.{c}")).collect();
        let new: Vec<String> = changing.iter().map(|c| format!("EXCLUDED.{c}")).collect();
        format!(
            "WITH upserted AS (INSERT INTO {table} AS {target} ({columns}, {pipeline}) \
             SELECT {columns}, $1::text FROM pg_temp.{stage} \
             ON CONFLICT ({key}) DO UPDATE SET {set} \
             WHERE ({old}) IS DISTINCT FROM ({new}) \
             RETURNING xmax::text::bigint <> 0 AS replaced) \
             SELECT count(*) FILTER (WHERE replaced) FROM upserted",
            table = self.table.quoted(),
            target = TARGET,
            pipeline = quote(PIPELINE_COLUMN),
            stage = quote(STAGE),
            set = set.join(", "),
            old = old.join(", "),
            new = new.join(", "),
        )
    }

    /// The fields outside the key.
    fn values(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .zip(&self.in_key)
            .filter(|(_, k)| !**k)
            .map(|(f, _)| f)
    }
}

/// Checks the key: not empty, no repeats, every name a non-nullable field of `schema`.
/// Returns, for each field, whether it is in the key.
fn check_key(key: &[String], schema: &[Field]) -> Result<Vec<bool>, String> {
    if key.is_empty() {
        return Err("`key` is empty: name the fields that identify a row".to_string());
    }
    let mut in_key = vec![false; schema.len()];
    for name in key {
        let Some(i) = schema.iter().position(|f| &f.name == name) else {
            let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
            return Err(format!(
                "key field `{name}` is not in the rows ({})",
                names.join(", ")
            ));
        };
        if std::mem::replace(&mut in_key[i], true) {
            return Err(format!("key field `{name}` is listed twice"));
        }
        if schema[i].nullable {
            return Err(format!(
                "key field `{name}` may be null, and a primary key column may not"
            ));
        }
    }
    Ok(in_key)
}

/// One column of the table DDL.
fn column_ddl(field: &Field) -> String {
    let null = if field.nullable { "" } else { " NOT NULL" };
    format!("{} {}{null}", quote(&field.name), column_type(field.ty))
}

/// `"a", "b", ...`
fn quoted_list<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| quote(n.as_ref())).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests;
