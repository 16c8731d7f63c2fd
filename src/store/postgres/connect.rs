//! Connecting to PostgreSQL: the settings of `[store]`, one-off connections (the leader's
//! election, migrations, `check`), the embedded schema migrations, and errors that name
//! `store.url` without its password.

use std::time::Duration;

use tokio_postgres::NoTls;

use crate::config::StoreConfig;
use crate::redact::error_chain;
use crate::store::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The advisory lock under which a schema's migrations run (one process at a time per
/// schema; stores in other schemas of the database do not wait for each other): a 64-bit hash
/// of this prefix and the schema name.
const MIGRATION_LOCK: &str = "devin-notify migrations of schema ";

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool.
pub(super) const POOL_SIZE: usize = 8;

/// `store.url (postgres://host:5432/db)`: the URL without its credentials.
pub fn place_of(url: &str) -> String {
    // From the parsed settings, never from the text: a password may hold `/` or sit in the
    // query (`?password=`).
    let Ok(pg) = url.parse::<tokio_postgres::Config>() else {
        return "store.url (not a PostgreSQL URL)".to_owned();
    };
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().unwrap_or("");
    format!("store.url (postgres://{host}:{port}/{db})")
}

/// The connection settings of `[store]`: the URL, with the schema as search path.
pub fn pg_config(config: &StoreConfig) -> Result<tokio_postgres::Config, StoreError> {
    let url = config.url.as_ref().map(|u| u.expose()).unwrap_or_default();
    let mut pg: tokio_postgres::Config =
        url.parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Postgres {
                what: place_of(url),
                message: format!("not a PostgreSQL URL: {}", error_chain(&e)),
            })?;
    // Server-side limits, so that a process that froze or lost the network in the middle of a
    // transaction cannot hold its locks (and a takeover) for long: its session ends once idle
    // in a transaction for a quarter of the lease. Options the URL carries (`?options=-c ...`)
    // come after, and so win; the schema is the search path.
    let lease_ms = config.lease.as_millis().max(4000) as u64;
    let ours = format!(
        "-c idle_in_transaction_session_timeout={} -c lock_timeout={lease_ms} -c statement_timeout=60000",
        lease_ms / 4
    );
    let options = match pg.get_options() {
        Some(given) if !given.is_empty() => format!("{ours} {given}"),
        _ => ours,
    };
    pg.options(format!("{options} -c search_path={}", config.schema));
    // An application_name the URL gives (to tell instances apart) is kept.
    if pg.get_application_name().is_none() {
        pg.application_name("devin-notify");
    }
    pg.connect_timeout(CONNECT_TIMEOUT);
    pg.keepalives_idle(Duration::from_secs(10));
    Ok(pg)
}

/// Opens one connection (outside the pool); its connection task runs until the client drops.
pub async fn connect(
    config: &StoreConfig,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StoreError> {
    let pg = pg_config(config)?;
    let place = place_of(config.url.as_ref().map(|u| u.expose()).unwrap_or_default());
    let (client, connection) = pg.connect(NoTls).await.map_err(pg_err(place.clone()))?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %error_chain(&e), "a PostgreSQL connection ended");
        }
    });
    Ok((client, task))
}

/// A PostgreSQL error as a store error about `what`.
pub(super) fn pg_err(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    let what = what.into();
    move |e| StoreError::Postgres {
        what,
        message: error_chain(&e),
    }
}

/// The applied schema version (`None`: no schema there yet), read without changing anything.
pub async fn schema_version(config: &StoreConfig) -> Result<Option<i64>, StoreError> {
    let (client, _task) = connect(config).await?;
    let place = place_of(config.url.as_ref().map(|u| u.expose()).unwrap_or_default());
    let exists = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{}.refinery_schema_history", config.schema)],
        )
        .await
        .map_err(pg_err(place.clone()))?;
    if !exists.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = client
        .query_one(
            "SELECT max(version)::bigint FROM refinery_schema_history",
            &[],
        )
        .await
        .map_err(pg_err(place))?;
    Ok(row.get(0))
}

/// Creates the schema when missing and applies the embedded migrations, under an advisory
/// lock so that processes starting together apply them once.
pub(super) async fn migrate(config: &StoreConfig, place: &str) -> Result<(), StoreError> {
    let (mut client, _task) = connect(config).await?;
    let err = |what: &str| pg_err(format!("{place}: {what}"));
    let lock_name = format!("{MIGRATION_LOCK}{}", config.schema);
    client
        .execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            &[&lock_name],
        )
        .await
        .map_err(err("migration lock"))?;
    let result = async {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", config.schema))
            .await
            .map_err(err(&format!("schema {}", config.schema)))?;
        embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .map_err(|e| StoreError::Postgres {
                what: format!("{place}: migrations of schema {}", config.schema),
                message: e.to_string(),
            })
    }
    .await;
    // The lock ends with the connection anyway; unlocking is a courtesy.
    let _ = client
        .execute(
            "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
            &[&lock_name],
        )
        .await;
    if let Ok(report) = &result {
        for m in report.applied_migrations() {
            tracing::info!(version = m.version(), name = m.name(), schema = %config.schema, "store: applied a schema migration");
        }
    }
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_never_show_a_password() {
        assert_eq!(
            place_of("postgres://app:s3cret@db.internal:6432/notify"),
            "store.url (postgres://db.internal:6432/notify)"
        );
        assert_eq!(
            place_of("postgres://app:pa/ss@db/notify"),
            "store.url (postgres://db:5432/notify)"
        );
        let with_query = place_of("postgres://app@db/notify?password=s3cret&sslmode=disable");
        assert!(!with_query.contains("s3cret"), "{with_query}");
        assert_eq!(
            place_of("host=db password=s3cret"),
            "store.url (postgres://db:5432/)"
        );
        assert_eq!(place_of("%%%"), "store.url (not a PostgreSQL URL)");
    }
}
