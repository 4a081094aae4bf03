//! One PostgreSQL session of the `postgres` sink: opening it (the connection task, the
//! `sluice-<pipeline>` application name), its staging table and prepared statements, the
//! transaction that writes one batch, and which errors are worth a reconnect and retry.

use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Error, NoTls, Statement};

use super::sql::Layout;

/// How long one connection attempt may take, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// TCP keepalive idle time, so a silently dead server is noticed.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Parses `url` (a `postgres://` URL or `key=value` pairs) and sets the sink's defaults.
pub fn config(url: &str, pipeline: &str) -> Result<Config, String> {
    let mut config: Config = url.parse().map_err(|e| {
        format!(
            "the PostgreSQL URL is not valid ({e}); write it as postgres://user@host:port/database"
        )
    })?;
    if config.get_application_name().is_none() {
        config.application_name(format!("sluice-{pipeline}"));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives_idle(KEEPALIVE_IDLE);
    Ok(config)
}

/// `postgres://user@host:port/database` of `config`, never with the password.
pub fn shown_url(config: &Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// Opens a session; its connection task logs how it ended.
pub async fn open(config: &Config, pipeline: &str) -> Result<Client, Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let pipeline = pipeline.to_string();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(
                "The PostgreSQL connection of pipeline `{pipeline}` ended: {}.",
                describe(&e)
            );
        }
    });
    Ok(client)
}

/// A session ready to write batches.
pub struct Conn {
    client: Client,
    copy: Statement,
    upsert: Statement,
}

impl Conn {
    /// Creates the staging table of `client`'s session and prepares the statements.
    pub async fn new(client: Client, layout: &Layout) -> Result<Self, Error> {
        client.batch_execute(&layout.create_stage()).await?;
        let copy = client.prepare(&layout.copy_stage()).await?;
        let upsert = client.prepare(&layout.upsert()).await?;
        Ok(Conn {
            client,
            copy,
            upsert,
        })
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Writes one COPY stream in one transaction; returns how many existing rows it replaced
    /// with other values.
    pub async fn write(&mut self, data: Bytes, pipeline: &str) -> Result<u64, Error> {
        let tx = self.client.transaction().await?;
        let sink = tx.copy_in::<_, Bytes>(&self.copy).await?;
        futures::pin_mut!(sink);
        sink.send(data).await?;
        sink.as_mut().finish().await?;
        let replaced: i64 = tx.query_one(&self.upsert, &[&pipeline]).await?.get(0);
        tx.commit().await?;
        Ok(replaced.max(0) as u64)
    }
}

/// Whether `e` may go away with a new session: the connection broke, the server is shutting
/// down or out of connections, or the transaction lost a serialization race.
pub fn is_transient(e: &Error) -> bool {
    let Some(code) = e.code() else {
        // Not a server error: an I/O error, a closed connection or a timeout.
        return true;
    };
    let class = &code.code()[..2];
    matches!(class, "08" | "53" | "57")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// Whether the server rejected the rows themselves (SQLSTATE class 22, data exception, or
/// 23, integrity constraint violation): retrying the same rows cannot help, but writing the
/// others may.
pub fn is_row_error(e: &Error) -> bool {
    e.code()
        .is_some_and(|code| matches!(&code.code()[..2], "22" | "23"))
}

/// `e` with the server's message, detail and hint on one line.
pub fn describe(e: &Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_url_has_no_password() {
        let c = config("postgres://bob:secret@db.example:6543/wh", "p").unwrap();
        assert_eq!(shown_url(&c), "postgres://bob@db.example:6543/wh");
        let c = config("host=h user=u password=secret dbname=d", "p").unwrap();
        assert_eq!(shown_url(&c), "postgres://u@h:5432/d");
        assert_eq!(c.get_application_name(), Some("sluice-p"));
    }

    #[test]
    fn bad_urls_are_errors() {
        let err = config("postgres://h:notaport/d", "p").unwrap_err();
        assert!(err.contains("not valid"), "{err}");
    }
}
