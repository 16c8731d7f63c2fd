//! Moving stores written by earlier versions to the current layout, when they are opened.
//!
//! Snapshots lived first in a `snapshots` tree keyed by session id, beside `fingerprints`;
//! then one to a key in a `sessions` tree keyed by creation time, then id; now in blocks of
//! neighbours ([`super::sled::blocks`]). A store of either earlier layout moves on, step by
//! step.

use super::encode;
use super::sled::{blocks, session_key, sled_err, SledEngine};
use super::StoreError;

/// The tree of the layout before blocks: one snapshot to a key.
const PER_KEY: &[u8] = b"sessions";

/// Moves the snapshots of a store keyed by id to the `sessions` tree (one to a key, moved into
/// blocks next), and gives each wait record its session's `created_at`. Safe to interrupt: the old tree is
/// dropped last, so an interrupted move runs again, whole, at the next open.
pub(super) fn id_keyed_snapshots(engine: &SledEngine) -> Result<(), StoreError> {
    const OLD: &[u8] = b"snapshots";
    let db = &engine.db;
    if !db.tree_names().iter().any(|name| name == OLD) {
        return Ok(());
    }
    let old = db.open_tree(OLD).map_err(sled_err("snapshots"))?;
    let per_key = db.open_tree(PER_KEY).map_err(sled_err("sessions"))?;
    let moved = move_snapshots(&per_key, &old)?;
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
fn move_snapshots(per_key: &sled::Tree, old: &sled::Tree) -> Result<usize, StoreError> {
    let mut moved = 0usize;
    let mut batch = sled::Batch::default();
    for item in old.iter() {
        let (id, bytes) = item.map_err(sled_err("snapshots"))?;
        let id = String::from_utf8_lossy(&id).into_owned();
        batch.insert(session_key(created_at(&bytes), &id), bytes);
        moved += 1;
        if moved.is_multiple_of(1000) {
            per_key
                .apply_batch(std::mem::take(&mut batch))
                .map_err(sled_err("sessions"))?;
        }
    }
    per_key.apply_batch(batch).map_err(sled_err("sessions"))?;
    Ok(moved)
}

/// Moves the snapshots of the `sessions` tree (one to a key) into blocks. Safe to interrupt:
/// the blocks are written again from the start, and the old tree is dropped last.
pub(super) fn snapshots_into_blocks(engine: &SledEngine) -> Result<(), StoreError> {
    let db = &engine.db;
    if !db.tree_names().iter().any(|name| name == PER_KEY) {
        return Ok(());
    }
    let per_key = db.open_tree(PER_KEY).map_err(sled_err("sessions"))?;
    engine.blocks.tree.clear().map_err(sled_err(blocks::TREE))?;
    let mut moved = 0usize;
    let mut run = Vec::new();
    for item in per_key.iter() {
        run.push(item.map_err(sled_err("sessions"))?);
        if run.len() == 1000 {
            moved += blocks::append(&engine.blocks.tree, &std::mem::take(&mut run))?;
        }
    }
    moved += blocks::append(&engine.blocks.tree, &run)?;
    db.flush().map_err(sled_err(blocks::TREE))?;
    db.drop_tree(PER_KEY).map_err(sled_err("sessions"))?;
    db.flush().map_err(sled_err(blocks::TREE))?;
    tracing::info!(
        sessions = moved,
        "store: moved the snapshots of an earlier version into blocks"
    );
    Ok(())
}
