//! Moving stores written by earlier versions to the current layout, when they are opened.
//!
//! Before the `sessions` tree (keyed by creation time, then id), snapshots lived in a
//! `snapshots` tree keyed by session id, beside `fingerprints`.

use super::encode;
use super::sled::{session_key, sled_err, SledEngine};
use super::StoreError;

/// Moves the snapshots of a store written by an earlier version to the `sessions` tree, and
/// gives each wait record its session's `created_at`. Safe to interrupt: the old tree is
/// dropped last, so an interrupted move runs again, whole, at the next open.
pub(super) fn id_keyed_snapshots(engine: &SledEngine) -> Result<(), StoreError> {
    const OLD: &[u8] = b"snapshots";
    let db = &engine.db;
    if !db.tree_names().iter().any(|name| name == OLD) {
        return Ok(());
    }
    let old = db.open_tree(OLD).map_err(sled_err("snapshots"))?;
    let moved = move_snapshots(engine, &old)?;
    for (id, mut wait) in engine.read_waits()? {
        let Some(bytes) = old.get(id.as_bytes()).map_err(sled_err("snapshots"))? else {
            continue;
        };
        wait.created_at = created_at(&bytes);
        engine
            .waiting
            .insert(id.as_bytes(), encode(&wait))
            .map_err(sled_err(format!("waiting/{id}")))?;
    }
    db.flush().map_err(sled_err("sessions"))?;
    db.drop_tree("fingerprints")
        .map_err(sled_err("fingerprints"))?;
    db.drop_tree(OLD).map_err(sled_err("snapshots"))?;
    db.flush().map_err(sled_err("sessions"))?;
    tracing::info!(
        sessions = moved,
        "store: moved the snapshots of an earlier version to the sessions tree"
    );
    Ok(())
}

/// A snapshot's creation time, read leniently: a snapshot that no longer decodes as a session
/// keeps its creation time when it has one (0 otherwise).
fn created_at(bytes: &[u8]) -> i64 {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("created_at").and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}

/// Copies every old snapshot under its new key, in batches; returns how many.
fn move_snapshots(engine: &SledEngine, old: &sled::Tree) -> Result<usize, StoreError> {
    let mut moved = 0usize;
    let mut batch = sled::Batch::default();
    for item in old.iter() {
        let (id, bytes) = item.map_err(sled_err("snapshots"))?;
        let id = String::from_utf8_lossy(&id).into_owned();
        batch.insert(session_key(created_at(&bytes), &id), bytes);
        moved += 1;
        if moved.is_multiple_of(1000) {
            engine
                .sessions
                .apply_batch(std::mem::take(&mut batch))
                .map_err(sled_err("sessions"))?;
        }
    }
    engine
        .sessions
        .apply_batch(batch)
        .map_err(sled_err("sessions"))?;
    Ok(moved)
}
