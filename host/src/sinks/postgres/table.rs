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
    let created = !exists(client, layout).await? && create(client, layout).await?;
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

/// Creates the table (and its schema) under the table's advisory lock, unless another host
/// created it meanwhile. Returns whether this call created it.
async fn create(client: &Client, layout: &Layout) -> anyhow::Result<bool> {
    client.batch_execute("BEGIN").await?;
    let result = async {
        client.batch_execute(&layout.lock_table()).await?;
        if created_meanwhile(client, layout).await? {
            return Ok(false);
        }
        if let Some(ddl) = layout.create_schema() {
            client.batch_execute(&ddl).await?;
        }
        client.batch_execute(&layout.create_table()).await?;
        Ok(true)
    }
    .await;
    match result {
        Ok(created) => {
            client.batch_execute("COMMIT").await?;
            Ok(created)
        }
        Err(e) => {
            // Leave no aborted transaction on the connection behind the error.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Whether the table exists where `CREATE TABLE` would put it, read from `pg_class` with the
/// statement's snapshot: name lookups (`to_regclass`) may still answer from the session's
/// catalog cache, which a table another session just committed has not reached yet.
async fn created_meanwhile(client: &Client, layout: &Layout) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE c.relname = $1 \
             AND n.nspname = coalesce($2, current_schema()))",
            &[&layout.table.name, &layout.table.schema],
        )
        .await?;
    Ok(row.get(0))
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

#[cfg(test)]
mod tests {
    use sluice_plugin_sdk::rows::Field;

    use super::*;

    /// Hosts of one group start together: eight sessions preparing one new table against
    /// this machine's PostgreSQL all succeed, and exactly one of them creates it.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_hosts_create_the_table_once() {
        const URL: &str = "postgres://postgres@127.0.0.1:5432/test";
        let table = format!("sluice_test_prepare_{}", std::process::id());
        let fields = vec![
            Field::new("station", FieldType::Str),
            Field::new("entries", FieldType::Int64),
        ];
        let layout = Layout::new(&table, &["station".to_string()], &fields).unwrap();
        let mut clients = Vec::new();
        for _ in 0..8 {
            let (client, conn) = tokio_postgres::connect(URL, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL is reachable at 127.0.0.1:5432");
            tokio::spawn(conn);
            clients.push(client);
        }
        clients[0]
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .unwrap();
        let runs = clients.iter().map(|c| prepare(c, &layout));
        let created: Vec<bool> = futures::future::join_all(runs)
            .await
            .into_iter()
            .map(|r| r.expect("every host prepares the table"))
            .collect();
        assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
        clients[0]
            .batch_execute(&format!("DROP TABLE {table}"))
            .await
            .unwrap();
    }
}
