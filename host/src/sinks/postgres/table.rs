//! The `postgres` sink's table in the database: created when missing, otherwise checked
//! against the rows (every field a column of the DDL type, nullability, the load metadata
//! columns, no other required column, a unique key matching `key`). Problems are reported
//! together, naming the table and the columns, with the fix.

use std::collections::HashMap;

use anyhow::bail;
use sluice_plugin_sdk::rows::FieldType;
use tokio_postgres::Client;

use super::sql::{LOADED_AT_COLUMN, Layout, PIPELINE_COLUMN, catalog_type};

/// One column as the catalog sees it.
struct Column {
    ty: String,
    not_null: bool,
    has_default: bool,
}

/// Creates the table when it is missing (with its schema), then checks it. Returns whether
/// the table was created.
pub async fn prepare(client: &Client, layout: &Layout) -> anyhow::Result<bool> {
    let created = !exists(client, layout).await?;
    if created {
        if let Some(ddl) = layout.create_schema() {
            client.batch_execute(&ddl).await?;
        }
        client.batch_execute(&layout.create_table()).await?;
    }
    let columns = columns(client, layout).await?;
    let mut problems = column_problems(layout, &columns);
    if !has_unique_key(client, layout).await? {
        problems.push(format!(
            "it has no primary key or unique index on exactly ({}), which the upsert needs",
            layout.key.join(", ")
        ));
    }
    if !problems.is_empty() {
        bail!(
            "the existing table `{}` does not fit the rows: {}. Alter or drop the table, or \
             point the sink at another `table`.",
            layout.table,
            problems.join("; ")
        );
    }
    Ok(created)
}

/// Whether the table exists (in the search path when not qualified).
async fn exists(client: &Client, layout: &Layout) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL",
            &[&layout.table.quoted()],
        )
        .await?;
    Ok(row.get(0))
}

/// The table's columns by name.
async fn columns(client: &Client, layout: &Layout) -> anyhow::Result<HashMap<String, Column>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
             a.atthasdef FROM pg_attribute a WHERE a.attrelid = $1::text::regclass \
             AND a.attnum > 0 AND NOT a.attisdropped",
            &[&layout.table.quoted()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let column = Column {
                ty: r.get(1),
                not_null: r.get(2),
                has_default: r.get(3),
            };
            (r.get(0), column)
        })
        .collect())
}

/// What is wrong with the columns, one sentence part each.
fn column_problems(layout: &Layout, columns: &HashMap<String, Column>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut want: Vec<(&str, &str, bool)> = layout
        .fields
        .iter()
        .map(|f| (f.name.as_str(), catalog_type(f.ty), f.nullable))
        .collect();
    want.push((PIPELINE_COLUMN, catalog_type(FieldType::Str), false));
    want.push((LOADED_AT_COLUMN, "timestamp with time zone", false));
    for (name, ty, nullable) in &want {
        match columns.get(*name) {
            None => problems.push(format!("column `{name}` ({ty}) is missing")),
            Some(c) if c.ty != *ty => {
                problems.push(format!("column `{name}` is {}, not {ty}", c.ty));
            }
            Some(c) if *nullable && c.not_null => problems.push(format!(
                "column `{name}` is NOT NULL, but the field may be null"
            )),
            Some(_) => {}
        }
    }
    let mut extra: Vec<&String> = columns
        .iter()
        .filter(|(name, c)| c.not_null && !c.has_default && !want.iter().any(|w| w.0 == *name))
        .map(|(name, _)| name)
        .collect();
    extra.sort();
    for name in extra {
        problems.push(format!(
            "column `{name}` is NOT NULL without a default, and the rows have no such field"
        ));
    }
    problems
}

/// Whether a usable unique index (not partial, not on expressions, not deferred) covers
/// exactly the key columns.
async fn has_unique_key(client: &Client, layout: &Layout) -> anyhow::Result<bool> {
    let rows = client
        .query(
            "SELECT ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) AS k(n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) \
             FROM pg_index i WHERE i.indrelid = $1::text::regclass AND i.indisunique \
             AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL",
            &[&layout.table.quoted()],
        )
        .await?;
    let mut key = layout.key.clone();
    key.sort();
    Ok(rows.iter().any(|r| {
        let mut columns: Vec<String> = r.get(0);
        columns.sort();
        columns == key
    }))
}
