//! The PostgreSQL engine's activity history: table `activity` (migration V4), the record's
//! JSON in `record` beside `at_ms`, which orders and bounds reads and prunes. A digest's last
//! period end is a row of `meta`, written in the commit of its deliveries.

use super::{json_text, no_nul, PgEngine};
use crate::digest::Activity;
use crate::store::{decode, Commit, StoreError};

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PgEngine {
    /// Writes a commit's activity records and marks.
    pub(crate) async fn write_activity(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        commit: &Commit,
    ) -> Result<(), StoreError> {
        if !commit.activity.is_empty() {
            let at: Vec<i64> = commit.activity.iter().map(|r| ms(r.at_ms)).collect();
            let records: Vec<String> = commit.activity.iter().map(json_text).collect();
            tx.execute(
                "INSERT INTO activity (at_ms, record) \
                 SELECT u.at, u.rec::jsonb FROM UNNEST($1::bigint[], $2::text[]) AS u(at, rec)",
                &[&at, &records],
            )
            .await
            .map_err(self.err("activity"))?;
        }
        if !commit.marks.is_empty() {
            let names: Vec<String> = commit
                .marks
                .iter()
                .map(|(n, _)| no_nul(n).into_owned())
                .collect();
            let values: Vec<&[u8]> = commit.marks.iter().map(|(_, v)| v.as_slice()).collect();
            tx.execute(
                "INSERT INTO meta (name, value) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&names, &values],
            )
            .await
            .map_err(self.err("meta"))?;
        }
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
                "SELECT id, record::text FROM activity WHERE at_ms > $1 AND at_ms <= $2 \
                 ORDER BY at_ms, id",
                &[&ms(start_ms), &ms(end_ms)],
            )
            .await
            .map_err(self.err("activity"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get(0);
            let text: String = row.get(1);
            match decode::<Activity>(&format!("activity/{id}"), text.as_bytes()) {
                Ok(record) => out.push(record),
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
