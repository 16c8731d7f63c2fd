//! The PostgreSQL engine's activity history: table `activity` (migration V4), the record's
//! JSON in `record` beside `at_ms`, which orders and bounds reads and prunes. An `acus` record
//! is one row per session and bucket (`session_id`, `bucket`), upserted: each commit adds its
//! ACUs to the row's `acus` ([`crate::digest::acus_bucket`]). A digest's last period end is a
//! row of `meta`, written with the commit's other meta values.

use super::{json_text, no_nul, PgEngine};
use crate::digest::{coalesce, Activity};
use crate::store::{decode, StoreError};

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgEngine {
    /// Writes a commit's activity records.
    pub(crate) async fn write_activity(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        activity: &[Activity],
    ) -> Result<(), StoreError> {
        let (bucketed, appended): (Vec<Activity>, Vec<Activity>) = coalesce(activity)
            .into_iter()
            .partition(Activity::is_bucketed);
        if !appended.is_empty() {
            let at: Vec<i64> = appended.iter().map(|r| ms(r.at_ms)).collect();
            let records: Vec<String> = appended.iter().map(json_text).collect();
            tx.execute(
                "INSERT INTO activity (at_ms, record) \
                 SELECT u.at, u.rec::jsonb FROM UNNEST($1::bigint[], $2::text[]) AS u(at, rec)",
                &[&at, &records],
            )
            .await
            .map_err(self.err("activity"))?;
        }
        if !bucketed.is_empty() {
            self.add_acus(tx, &bucketed).await?;
        }
        Ok(())
    }

    /// Adds `acus` records (one per session and bucket, see [`coalesce`]) to their rows: the
    /// ACUs sum, the record (title, link, tags) is the latest.
    async fn add_acus(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        records: &[Activity],
    ) -> Result<(), StoreError> {
        let at: Vec<i64> = records.iter().map(|r| ms(r.at_ms)).collect();
        let texts: Vec<String> = records.iter().map(json_text).collect();
        let ids: Vec<String> = records
            .iter()
            .map(|r| no_nul(&r.session_id).into_owned())
            .collect();
        let acus: Vec<f64> = records.iter().map(|r| r.acus).collect();
        tx.execute(
            "INSERT INTO activity (at_ms, record, session_id, bucket, acus) \
             SELECT u.at, u.rec::jsonb, u.sid, u.at, u.acus \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::float8[]) AS u(at, rec, sid, acus) \
             ON CONFLICT (session_id, bucket) WHERE bucket IS NOT NULL \
             DO UPDATE SET acus = activity.acus + EXCLUDED.acus, record = EXCLUDED.record",
            &[&at, &texts, &ids, &acus],
        )
        .await
        .map_err(self.err("activity"))?;
        Ok(())
    }

    pub(super) async fn read_activity(
        &self,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<Activity>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, record::text, acus FROM activity WHERE at_ms > $1 AND at_ms <= $2 \
                 ORDER BY at_ms, id",
                &[&ms(start_ms), &ms(end_ms)],
            )
            .await
            .map_err(self.err("activity"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get(0);
            let text: String = row.get(1);
            let acus: Option<f64> = row.get(2);
            match decode::<Activity>(&format!("activity/{id}"), text.as_bytes()) {
                // An `acus` row: its sum is the column.
                Ok(record) => out.push(Activity {
                    acus: acus.unwrap_or(record.acus),
                    ..record
                }),
                Err(e) => tracing::warn!(error = %e, "unreadable activity record skipped"),
            }
        }
        Ok(out)
    }

    pub(super) async fn prune(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM activity WHERE id IN \
                 (SELECT id FROM activity WHERE at_ms < $1 ORDER BY at_ms, id LIMIT $2)",
                &[&ms(before_ms), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(self.err("activity"))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
