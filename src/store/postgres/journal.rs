//! The PostgreSQL engine's outcomes of deliveries, each one statement that also appends its
//! delivery log entry (several outcomes: one transaction), and its two logs: tables `delivery_log` and
//! `event_log` (migration V2), the entry's JSON in `record` beside the columns the filters use.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::{json_text, no_nul, PgEngine};
use crate::store::history::{DeliveryFilter, DeliveryLogEntry, EventLogEntry, Log};
use crate::store::{decode, Change, Commit, Delivery, Settle, StoreError};

type Param<'a> = &'a (dyn ToSql + Sync);

/// A delivery log entry as the columns of `delivery_log`.
struct LogRow {
    at_ms: i64,
    sink: String,
    outcome: &'static str,
    session_id: String,
    record: String,
}

impl LogRow {
    fn of(entry: &DeliveryLogEntry) -> LogRow {
        LogRow {
            at_ms: i64::try_from(entry.at_ms).unwrap_or(i64::MAX),
            sink: no_nul(&entry.sink).into_owned(),
            outcome: entry.outcome.as_str(),
            session_id: no_nul(&entry.session_id).into_owned(),
            record: json_text(entry),
        }
    }

    fn params(&self) -> [Param<'_>; 5] {
        [
            &self.at_ms,
            &self.sink,
            &self.outcome,
            &self.session_id,
            &self.record,
        ]
    }
}

/// The statement's last part: the log entry, from parameter `$first` on ([`LogRow::params`]).
fn append_log(first: usize) -> String {
    let p: Vec<String> = (first..first + 5).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO delivery_log (at_ms, sink, outcome, session_id, record) \
         VALUES ({}, {}, {}, {}, {}::text::jsonb)",
        p[0], p[1], p[2], p[3], p[4]
    )
}

/// The id above which a log's newest `$1` entries lie.
const FLOOR: &str = "coalesce((SELECT id FROM {table} ORDER BY id DESC OFFSET $1 LIMIT 1), 0)";

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An outcome's statement (before its log entry) and its parameters.
fn outcome_sql<'a>(
    settle: &'a Settle,
    seq: &'a i64,
    record: &'a String,
) -> (&'static str, Vec<Param<'a>>) {
    match &settle.change {
        Change::Delivered => (
            "WITH removed AS (DELETE FROM outbox WHERE seq = $1)",
            vec![seq],
        ),
        Change::Retry(_) => (
            "WITH updated AS (UPDATE outbox SET record = $2::text::jsonb WHERE seq = $1)",
            vec![seq, record],
        ),
        Change::Dead(_) => (
            "WITH moved AS (DELETE FROM outbox WHERE seq = $1 RETURNING seq), \
             buried AS (INSERT INTO dead (seq, record) SELECT seq, $2::text::jsonb FROM moved \
             ON CONFLICT (seq) DO UPDATE SET record = EXCLUDED.record)",
            vec![seq, record],
        ),
    }
}

/// Runs an outcome's statement `sql` (its parameters `params`) with its log entry: one
/// statement.
async fn with_log(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
    log: &DeliveryLogEntry,
) -> Result<(), tokio_postgres::Error> {
    let row = LogRow::of(log);
    let statement = format!("{sql} {}", append_log(params.len() + 1));
    let all: Vec<Param<'_>> = params.iter().copied().chain(row.params()).collect();
    client.execute(&statement, &all).await.map(|_| ())
}

/// Records one outcome with its log entry.
async fn settle_with(
    client: &impl GenericClient,
    settle: &Settle,
) -> Result<(), tokio_postgres::Error> {
    let seq = settle.seq as i64;
    let record = match &settle.change {
        Change::Delivered => String::new(),
        Change::Retry(delivery) => json_text(delivery),
        Change::Dead(letter) => json_text(letter),
    };
    let (sql, params) = outcome_sql(settle, &seq, &record);
    with_log(client, sql, &params, &settle.log).await
}

impl PgEngine {
    /// Records outcomes with their log entries: one statement each, in one transaction.
    pub(super) async fn settle_logged(&self, batch: &[Settle]) -> Result<(), StoreError> {
        let what = format!("outbox/{}", batch.first().map_or(0, |s| s.seq));
        let mut client = self.client().await?;
        if let [one] = batch {
            // A statement is a transaction of its own.
            return settle_with(&**client, one).await.map_err(self.err(&what));
        }
        let tx = client.transaction().await.map_err(self.err(&what))?;
        for settle in batch {
            settle_with(&*tx, settle).await.map_err(self.err(&what))?;
        }
        tx.commit().await.map_err(self.err(&what))
    }

    pub(super) async fn requeue_logged(
        &self,
        seq: u64,
        delivery: &Delivery,
        log: &DeliveryLogEntry,
    ) -> Result<(), StoreError> {
        let sql = "WITH moved AS (DELETE FROM dead WHERE seq = $1 RETURNING seq), \
                   queued AS (INSERT INTO outbox (seq, sink, session_id, record) \
                   SELECT seq, $2, $3, $4::text::jsonb FROM moved ON CONFLICT (seq) DO NOTHING)";
        let seq = seq as i64;
        let record = json_text(delivery);
        let params: [Param<'_>; 4] = [&seq, &delivery.sink, &delivery.session_id, &record];
        let client = self.client().await?;
        with_log(&**client, sql, &params, log)
            .await
            .map_err(self.err(&format!("dead/{seq}")))
    }

    /// Appends a commit's log entries (its events, and the outcomes decided at detection).
    pub(super) async fn write_logs(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        if !commit.events.is_empty() {
            let at: Vec<i64> = commit
                .events
                .iter()
                .map(|e| i64::try_from(e.detected_at_ms).unwrap_or(i64::MAX))
                .collect();
            let records: Vec<String> = commit.events.iter().map(json_text).collect();
            tx.execute(
                "INSERT INTO event_log (detected_at_ms, record) \
                 SELECT u.at, u.rec::jsonb FROM UNNEST($1::bigint[], $2::text[]) AS u(at, rec)",
                &[&at, &records],
            )
            .await
            .map_err(self.err("event_log"))?;
        }
        if !commit.logged.is_empty() {
            let rows: Vec<LogRow> = commit.logged.iter().map(LogRow::of).collect();
            let at: Vec<i64> = rows.iter().map(|r| r.at_ms).collect();
            let sinks: Vec<&str> = rows.iter().map(|r| r.sink.as_str()).collect();
            let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome).collect();
            let sessions: Vec<&str> = rows.iter().map(|r| r.session_id.as_str()).collect();
            let records: Vec<&str> = rows.iter().map(|r| r.record.as_str()).collect();
            tx.execute(
                "INSERT INTO delivery_log (at_ms, sink, outcome, session_id, record) \
                 SELECT u.at, u.sink, u.outcome, u.sid, u.rec::jsonb \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                 AS u(at, sink, outcome, sid, rec)",
                &[&at, &sinks, &outcomes, &sessions, &records],
            )
            .await
            .map_err(self.err("delivery_log"))?;
        }
        Ok(())
    }

    /// Reads `(id, record)` rows of a log, decoded with their id; unreadable ones skipped.
    async fn read_log<T: for<'de> serde::Deserialize<'de>>(
        &self,
        log: Log,
        sql: &str,
        params: &[Param<'_>],
        set_id: impl Fn(&mut T, u64),
    ) -> Result<Vec<T>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(sql, params)
            .await
            .map_err(self.err(log.name()))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.get::<_, i64>(0) as u64;
            let text: String = row.get(1);
            match decode::<T>(&format!("{}/{id}", log.name()), text.as_bytes()) {
                Ok(mut entry) => {
                    set_id(&mut entry, id);
                    out.push(entry);
                }
                Err(e) => tracing::warn!(error = %e, "unreadable log entry skipped"),
            }
        }
        Ok(out)
    }

    pub(super) async fn read_deliveries(
        &self,
        filter: &DeliveryFilter,
        history: usize,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError> {
        let (history, limit) = (as_i64(history), as_i64(filter.limit));
        let outcome = filter.outcome.map(|o| o.as_str());
        let before = filter
            .before_id
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let mut params: Vec<Param<'_>> = Vec::with_capacity(6);
        params.push(&history);
        params.push(&limit);
        let mut sql = format!(
            "SELECT id, record::text FROM delivery_log WHERE id > {}",
            FLOOR.replace("{table}", "delivery_log")
        );
        let filters: [(&str, Option<Param<'_>>); 4] = [
            ("sink =", filter.sink.as_ref().map(|s| s as Param<'_>)),
            ("outcome =", outcome.as_ref().map(|o| o as Param<'_>)),
            (
                "session_id =",
                filter.session_id.as_ref().map(|s| s as Param<'_>),
            ),
            ("id <", before.as_ref().map(|b| b as Param<'_>)),
        ];
        for (test, value) in filters {
            if let Some(value) = value {
                params.push(value);
                sql.push_str(&format!(" AND {test} ${}", params.len()));
            }
        }
        sql.push_str(" ORDER BY id DESC LIMIT $2");
        self.read_log(
            Log::Deliveries,
            &sql,
            &params,
            |e: &mut DeliveryLogEntry, id| e.id = id,
        )
        .await
    }

    pub(super) async fn read_events(
        &self,
        limit: usize,
        before_id: Option<u64>,
        history: usize,
    ) -> Result<Vec<EventLogEntry>, StoreError> {
        let (history, limit) = (as_i64(history), as_i64(limit));
        let before = before_id.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT id, record::text FROM event_log WHERE id > {} AND id < $3 \
             ORDER BY id DESC LIMIT $2",
            FLOOR.replace("{table}", "event_log")
        );
        self.read_log(
            Log::Events,
            &sql,
            &[&history, &limit, &before],
            |e: &mut EventLogEntry, id| e.id = id,
        )
        .await
    }

    /// Deletes all but the newest `keep` entries of a log.
    pub(super) async fn trim(&self, log: Log, keep: usize) -> Result<(), StoreError> {
        let table = log.name();
        let sql = format!(
            "DELETE FROM {table} WHERE id <= (SELECT id FROM {table} ORDER BY id DESC OFFSET $1 LIMIT 1)"
        );
        self.client()
            .await?
            .execute(&sql, &[&as_i64(keep)])
            .await
            .map(|_| ())
            .map_err(self.err(table))
    }
}
