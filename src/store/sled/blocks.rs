//! Snapshot blocks: the sled engine keeps the snapshots of sessions with neighbouring keys
//! together, up to [`MAX_ENTRIES`] (or [`MAX_BYTES`]) to one value of the tree
//! `session_blocks`.
//!
//! Why: sled's cost of a write is mostly per key (it copies the leaf node and logs a delta for
//! each): 100,000 snapshots of 640 bytes written one to a key take about 2.2x the time the same
//! bytes take as blocks (`BENCHMARKS.md`, issue 14). Why 1.5 KiB (about 2 snapshots of 640
//! bytes): a leaf holds up to 17 values, so a leaf's size, and what sled copies and logs on
//! each write to it, grows with the block; a poll that changes sessions spread over a large
//! store rewrites one block per changed session. Measured (interleaved, 100k sessions): 3 KiB
//! blocks synced 1.07x faster than 1.5 KiB ones but made a poll changing 1,000 sessions 1.3x
//! slower; 6 KiB slower still; 32 KiB made every leaf a "blob" (sled writes a node over a
//! quarter of its 512 KiB segment as a file of its own), each rewrite a file created and
//! deleted. 1.5 KiB keeps that poll near one snapshot to a key and the full sync at about 0.67x
//! of it.
//!
//! Layout: a block's key is a session key ([`super::session_key`]); the block holds the
//! snapshots whose keys are at or above it and below the next block's key, in key order, each
//! as `key length (u32 BE) | key | value length (u32 BE) | value`. The block of a session is
//! therefore the last block whose key is at or below the session's key. Blocks only grow or
//! split (snapshots are never removed): a block over the limits is cut into blocks of equal
//! size, the first keeping the block's key, the others keyed by their first snapshot's key.
//! Snapshots below every block form new blocks keyed by their first snapshot.
//!
//! Writes are planned from the blocks as stored ([`plan`]), outside sled's transaction (which
//! cannot read a range): [`Blocks::write`] lets one commit plan and write at a time. The blocks
//! found by the last read ([`Blocks::get_many`], a page's snapshots before its commit) are kept
//! for the plan of the next write, unless the blocks were written in between: a poll that
//! changes sessions spread over a large store reads each block once, not twice.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sled::IVec;

use super::{key_of_session, sled_err};
use crate::store::StoreError;

/// Snapshots per block at most.
pub(crate) const MAX_ENTRIES: usize = 64;
/// Bytes per block at most (a single larger snapshot is a block of its own).
pub(crate) const MAX_BYTES: usize = 3 * 512;
/// The tree of the blocks.
pub(crate) const TREE: &str = "session_blocks";

/// One block as stored: its key, its bytes, and where each snapshot's key and value are.
struct Block {
    key: IVec,
    bytes: IVec,
    entries: Vec<(Range<usize>, Range<usize>)>,
}

impl Block {
    /// Reads the entries of a block; an error says what is wrong with it.
    fn parse(key: IVec, bytes: IVec) -> Result<Block, String> {
        let mut entries = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let k = field(&bytes, &mut at)?;
            let v = field(&bytes, &mut at)?;
            if let Some((last, _)) = entries.last() {
                if bytes[k.clone()] <= bytes[Range::clone(last)] {
                    return Err("its keys are out of order".into());
                }
            }
            if bytes[k.clone()] < key[..] {
                return Err("it holds a key below its own".into());
            }
            entries.push((k, v));
        }
        Ok(Block {
            key,
            bytes,
            entries,
        })
    }

    /// Reads a block, or takes it as empty (logged) when it cannot be read: its snapshots are
    /// then first seen again, and replaced as they are listed.
    fn parse_or_empty(key: IVec, bytes: IVec) -> Block {
        match Block::parse(key.clone(), bytes) {
            Ok(block) => block,
            Err(why) => {
                tracing::error!(block = %name(&key), "an unreadable snapshot block is taken as empty: {why}");
                Block {
                    key,
                    bytes: IVec::default(),
                    entries: Vec::new(),
                }
            }
        }
    }

    fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        let (k, v) = &self.entries[i];
        (&self.bytes[k.clone()], &self.bytes[v.clone()])
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.entries.len()).map(|i| self.entry(i))
    }

    /// The snapshot stored under `key` in this block.
    fn find(&self, key: &[u8]) -> Option<&[u8]> {
        let i = self
            .entries
            .binary_search_by(|(k, _)| self.bytes[k.clone()].cmp(key))
            .ok()?;
        Some(self.entry(i).1)
    }

    /// Whether `key` belongs to this block for sure: between its key and its last snapshot's.
    fn covers(&self, key: &[u8]) -> bool {
        let last = self.entries.last().map(|(k, _)| &self.bytes[k.clone()]);
        key >= &self.key[..] && last.is_some_and(|last| key <= last)
    }
}

/// One length-prefixed field of a block, at `at`.
fn field(bytes: &[u8], at: &mut usize) -> Result<Range<usize>, String> {
    let len = bytes
        .get(*at..*at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or("it ends inside a length")?;
    let start = *at + 4;
    let end = start
        .checked_add(u32::from_be_bytes(len) as usize)
        .filter(|end| *end <= bytes.len())
        .ok_or("it ends inside a field")?;
    *at = end;
    Ok(start..end)
}

/// A block's name in errors and logs.
fn name(key: &[u8]) -> String {
    match key_of_session(key) {
        Ok(k) => format!("{TREE}/{}/{}", k.created_at, k.session_id),
        Err(_) => format!("{TREE}/{key:02x?}"),
    }
}

/// The bytes of a block holding `entries` (in key order).
fn encode<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in entries {
        for part in [k, v] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Cuts snapshots (in key order) into runs that fit a block: as few as the limits allow, of
/// counts that differ by one at most (a run is cut early where large snapshots would overflow
/// it).
fn chunks<'a>(entries: &'a [(&'a [u8], &'a [u8])]) -> Vec<&'a [(&'a [u8], &'a [u8])]> {
    let size = |e: &(&[u8], &[u8])| e.0.len() + e.1.len() + 8;
    let n = entries.len();
    let bytes: usize = entries.iter().map(size).sum();
    let fit_by_bytes = (MAX_BYTES / bytes.div_ceil(n.max(1)).max(1)).max(1);
    let blocks = n.div_ceil(MAX_ENTRIES).max(n.div_ceil(fit_by_bytes)).max(1);
    // The end of a run from `start`: at `most`, or before the snapshot that would overflow it.
    let run_end = |start: usize, most: usize| {
        let (mut end, mut filled) = (start, 0);
        while end < most && (end == start || filled + size(&entries[end]) <= MAX_BYTES) {
            filled += size(&entries[end]);
            end += 1;
        }
        end
    };
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..blocks {
        let count = n / blocks + usize::from(i < n % blocks);
        let end = run_end(start, (start + count).min(n));
        if end > start {
            out.push(&entries[start..end]);
        }
        start = end;
    }
    // What the byte limit left over.
    while start < n {
        let end = run_end(start, n);
        out.push(&entries[start..end]);
        start = end;
    }
    out
}

/// The snapshots' tree, and what the last read found ([module docs](self)).
#[derive(Clone)]
pub(crate) struct Blocks {
    pub(crate) tree: sled::Tree,
    /// Held while a write is planned and written; holds the last read's blocks.
    recent: Arc<Mutex<Recent>>,
    /// Counts the writes: a read's blocks are good for a plan while it has not moved.
    writes: Arc<AtomicU64>,
}

/// The blocks a read found: by session key, the block it belongs to (`None`: below every
/// block), as of `writes`.
#[derive(Default)]
struct Recent {
    writes: u64,
    known: Known,
}

type Known = HashMap<Vec<u8>, Option<Arc<Block>>>;

/// Keys and values (session key -> snapshot, or block key -> block).
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

impl Blocks {
    pub(crate) fn new(tree: sled::Tree) -> Blocks {
        Blocks {
            tree,
            recent: Arc::default(),
            writes: Arc::default(),
        }
    }

    fn recent(&self) -> MutexGuard<'_, Recent> {
        // What it guards is a cache: a panic while it was held leaves nothing inconsistent.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The snapshots stored under `keys`, in their order.
    pub(crate) fn get_many(
        &self,
        keys: impl Iterator<Item = Vec<u8>>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let writes = self.writes.load(Ordering::SeqCst);
        let mut reader = Reader::new(&self.tree);
        let found = keys
            .map(|key| reader.get(key))
            .collect::<Result<Vec<_>, _>>()?;
        *self.recent() = Recent {
            writes,
            known: reader.known,
        };
        Ok(found)
    }

    /// Plans the block writes that store `snapshots` ([`plan`]) and hands them to `write`, which
    /// must write them all or none; no other write comes in between.
    pub(crate) fn write<T>(
        &self,
        snapshots: &[(Vec<u8>, &[u8])],
        write: impl FnOnce(&[(Vec<u8>, Vec<u8>)]) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut recent = self.recent();
        let mut known = std::mem::take(&mut recent.known);
        if recent.writes != self.writes.load(Ordering::SeqCst) {
            known.clear();
        }
        let planned = plan(&self.tree, snapshots, &known);
        let result = planned.and_then(|writes| write(&writes));
        self.writes.fetch_add(1, Ordering::SeqCst);
        result
    }
}

/// Reads snapshots by session key, keeping the last block read (a page's sessions are mostly
/// neighbours) and which block each key belongs to.
struct Reader<'a> {
    tree: &'a sled::Tree,
    last: Option<Arc<Block>>,
    known: Known,
}

impl<'a> Reader<'a> {
    fn new(tree: &'a sled::Tree) -> Reader<'a> {
        Reader {
            tree,
            last: None,
            known: HashMap::new(),
        }
    }

    /// The snapshot stored under `key`.
    fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        let block = match self.last.as_ref().filter(|b| b.covers(&key)) {
            Some(last) => Some(Arc::clone(last)),
            None => block_of(self.tree, &key)?.map(Arc::new),
        };
        let found = block
            .as_ref()
            .and_then(|b| b.find(&key))
            .map(<[u8]>::to_vec);
        if block.is_some() {
            self.last.clone_from(&block);
        }
        self.known.insert(key, block);
        Ok(found)
    }
}

/// The block `key` belongs to, if any.
fn block_of(tree: &sled::Tree, key: &[u8]) -> Result<Option<Block>, StoreError> {
    match tree.range(..=key).next_back() {
        None => Ok(None),
        Some(item) => {
            let (k, v) = item.map_err(sled_err(TREE))?;
            Ok(Some(Block::parse_or_empty(k, v)))
        }
    }
}

/// Every snapshot, in key order; an unreadable block stops the walk, named.
pub(crate) fn all(tree: &sled::Tree) -> Result<Pairs, StoreError> {
    let mut out = Vec::new();
    for item in tree.iter() {
        let (k, v) = item.map_err(sled_err(TREE))?;
        let block = Block::parse(k.clone(), v).map_err(|message| StoreError::Corrupt {
            what: name(&k),
            message,
        })?;
        out.extend(block.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
    }
    Ok(out)
}

/// The block writes (key, bytes) that store `snapshots` (session key, bytes; a key given twice
/// keeps its last bytes) beside what the blocks hold; `known` holds the blocks a read found
/// since the last write, by session key.
fn plan(
    tree: &sled::Tree,
    snapshots: &[(Vec<u8>, &[u8])],
    known: &Known,
) -> Result<Pairs, StoreError> {
    let fresh: BTreeMap<&[u8], &[u8]> = snapshots.iter().map(|(k, v)| (k.as_slice(), *v)).collect();
    let mut writes = Vec::new();
    // From the highest key down: each step takes the snapshots of one stored block.
    let mut rest = fresh.into_iter().rev().peekable();
    while let Some(&(top, _)) = rest.peek() {
        let block = match known.get(top) {
            Some(block) => block.clone(),
            None => block_of(tree, top)?.map(Arc::new),
        };
        let Some(block) = block else {
            // Below every block: new blocks.
            let mut below: Vec<_> = rest.by_ref().collect();
            below.reverse();
            writes.extend(new_blocks(&below));
            break;
        };
        let mut mine: Vec<_> =
            std::iter::from_fn(|| rest.next_if(|(k, _)| *k >= &block.key[..])).collect();
        mine.reverse();
        let merged = merge(block.iter(), mine);
        for (i, run) in chunks(&merged).into_iter().enumerate() {
            let key = if i == 0 {
                block.key.to_vec()
            } else {
                run[0].0.to_vec()
            };
            writes.push((key, encode(run.iter().copied())));
        }
    }
    Ok(writes)
}

/// Writes snapshots (in key order, above every block) as new blocks; returns how many.
pub(crate) fn append(tree: &sled::Tree, run: &[(IVec, IVec)]) -> Result<usize, StoreError> {
    let entries: Vec<(&[u8], &[u8])> = run.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let mut batch = sled::Batch::default();
    for (key, block) in new_blocks(&entries) {
        batch.insert(key, block);
    }
    tree.apply_batch(batch).map_err(sled_err(TREE))?;
    Ok(entries.len())
}

/// Snapshots (in key order, below or above every block) as new blocks, each under its first
/// snapshot's key.
fn new_blocks(entries: &[(&[u8], &[u8])]) -> Pairs {
    chunks(entries)
        .into_iter()
        .map(|run| (run[0].0.to_vec(), encode(run.iter().copied())))
        .collect()
}

/// Two runs of snapshots in key order merged; `fresh` wins on equal keys.
fn merge<'a>(
    stored: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    fresh: Vec<(&'a [u8], &'a [u8])>,
) -> Vec<(&'a [u8], &'a [u8])> {
    let mut out = Vec::with_capacity(fresh.len());
    let mut stored = stored.peekable();
    for (k, v) in fresh {
        while let Some(s) = stored.next_if(|(s, _)| *s < k) {
            out.push(s);
        }
        stored.next_if(|(s, _)| *s == k);
        out.push((k, v));
    }
    out.extend(stored);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u32) -> Vec<u8> {
        super::super::session_key(i64::from(n), &format!("devin-{n:05}"))
    }

    fn blocks() -> (tempfile::TempDir, sled::Db, Blocks) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).open().expect("open");
        let tree = db.open_tree(TREE).expect("tree");
        (dir, db, Blocks::new(tree))
    }

    /// Writes snapshots as a commit does; returns how many blocks were written.
    fn write(blocks: &Blocks, snapshots: &[(Vec<u8>, Vec<u8>)]) -> usize {
        let given: Vec<(Vec<u8>, &[u8])> = snapshots
            .iter()
            .map(|(k, v)| (k.clone(), v.as_slice()))
            .collect();
        blocks
            .write(&given, |writes| {
                for (k, v) in writes {
                    blocks
                        .tree
                        .insert(k.as_slice(), v.as_slice())
                        .expect("insert");
                }
                Ok(writes.len())
            })
            .expect("write")
    }

    fn get(blocks: &Blocks, n: u32) -> Option<Vec<u8>> {
        let found = blocks.get_many(std::iter::once(k(n))).expect("get");
        found.into_iter().next().flatten()
    }

    fn value(n: u32, version: u8) -> Vec<u8> {
        format!("{{\"n\":{n},\"v\":{version}}}").into_bytes()
    }

    /// Every block parses, holds at most the limits, and only keys at or above its own and
    /// below the next block's.
    fn check_invariants(tree: &sled::Tree) {
        let blocks: Vec<Block> = tree
            .iter()
            .map(|i| {
                let (k, v) = i.expect("item");
                Block::parse(k, v).expect("a readable block")
            })
            .collect();
        for pair in blocks.windows(2) {
            let last = pair[0].iter().last().expect("not empty").0;
            assert!(last < &pair[1].key[..], "a key beyond the next block");
        }
        for b in &blocks {
            let bytes: usize = b.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
            assert!(!b.entries.is_empty() && b.entries.len() <= MAX_ENTRIES);
            assert!(bytes <= MAX_BYTES || b.entries.len() == 1, "{bytes} bytes");
        }
    }

    #[test]
    fn a_listing_newest_first_fills_blocks_and_reads_back() {
        let (_dir, _db, blocks) = blocks();
        // Pages of 200, newest first, as a full listing writes them.
        let mut written = 0;
        for page in 0..5u32 {
            let snapshots: Vec<_> = (0..200)
                .map(|i| {
                    let n = 1000 - page * 200 - i;
                    (k(n), value(n, 0))
                })
                .collect();
            written += write(&blocks, &snapshots);
        }
        // 200 snapshots of 43 bytes (key, value and lengths) a page: 6 blocks of 33 or 34.
        assert_eq!(written, 30, "each block written once");
        assert_eq!(blocks.tree.len(), 30);
        check_invariants(&blocks.tree);
        let found = blocks.get_many((1..=1000).rev().map(k)).expect("get");
        for (n, found) in (1..=1000).rev().zip(found) {
            assert_eq!(found, Some(value(n, 0)), "{n}");
        }
        assert_eq!(get(&blocks, 0), None, "below every block");
        assert_eq!(get(&blocks, 5000), None, "above every key");
        let all = all(&blocks.tree).expect("all");
        assert_eq!(all.len(), 1000);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn changes_rewrite_their_block_and_new_sessions_split_it() {
        let (_dir, _db, blocks) = blocks();
        let first: Vec<_> = (1..=30).map(|n| (k(n * 10), value(n * 10, 0))).collect();
        write(&blocks, &first);
        assert_eq!(blocks.tree.len(), 1);
        // One change, one block rewritten; a key given twice keeps its last bytes.
        let writes = write(&blocks, &[(k(300), value(300, 1)), (k(300), value(300, 2))]);
        assert_eq!(writes, 1);
        // New sessions between and above the stored ones: the block splits.
        let between: Vec<_> = (1..30).map(|n| (k(n * 10 + 5), value(n, 9))).collect();
        write(&blocks, &between);
        assert!(blocks.tree.len() >= 2, "split: {}", blocks.tree.len());
        check_invariants(&blocks.tree);
        assert_eq!(get(&blocks, 300), Some(value(300, 2)));
        assert_eq!(get(&blocks, 15), Some(value(1, 9)));
        assert_eq!(get(&blocks, 200), Some(value(200, 0)));
        assert_eq!(get(&blocks, 7), None);
        // Sessions below every block form a block of their own; the first block's key stays.
        write(&blocks, &[(k(1), value(1, 0)), (k(2), value(2, 0))]);
        check_invariants(&blocks.tree);
        assert_eq!(all(&blocks.tree).expect("all").len(), 61);
        assert_eq!(get(&blocks, 10), Some(value(10, 0)));
        assert!(blocks.tree.contains_key(k(10)).expect("get"));
    }

    #[test]
    fn a_plan_uses_the_blocks_its_read_found_unless_a_write_came_between() {
        let (_dir, _db, blocks) = blocks();
        let first: Vec<_> = (1..=10).map(|n| (k(n * 10), value(n * 10, 0))).collect();
        write(&blocks, &first);
        // Read, then take the block away behind the cache's back: the plan merges into the
        // block the read found (all ten snapshots written back), without reading the tree.
        assert_eq!(get(&blocks, 50), Some(value(50, 0)));
        blocks.tree.remove(k(10)).expect("remove");
        write(&blocks, &[(k(50), value(50, 1))]);
        assert_eq!(all(&blocks.tree).expect("all").len(), 10);
        assert_eq!(get(&blocks, 50), Some(value(50, 1)));
        // A write between the read and the plan: the read's blocks are not used.
        assert_eq!(get(&blocks, 50), Some(value(50, 1)));
        blocks.writes.fetch_add(1, Ordering::SeqCst);
        blocks.tree.remove(k(10)).expect("remove");
        write(&blocks, &[(k(50), value(50, 2))]);
        assert_eq!(
            all(&blocks.tree).expect("all").len(),
            1,
            "planned from the tree"
        );
    }

    #[test]
    fn a_block_over_the_limit_is_cut_when_next_written() {
        // A block written under a larger limit (3 KiB blocks, before this one): read as it
        // is, and cut to the limit by the next write to it.
        let (_dir, _db, blocks) = blocks();
        let old: Vec<(Vec<u8>, Vec<u8>)> = (1..=4u32).map(|n| (k(n), vec![b'x'; 700])).collect();
        let bytes = encode(old.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
        assert!(bytes.len() > MAX_BYTES);
        blocks.tree.insert(k(1), bytes).expect("insert");
        assert_eq!(get(&blocks, 3), Some(vec![b'x'; 700]));
        assert_eq!(write(&blocks, &[(k(3), value(3, 1))]), 2);
        check_invariants(&blocks.tree);
        assert_eq!(get(&blocks, 3), Some(value(3, 1)));
        assert_eq!(get(&blocks, 4), Some(vec![b'x'; 700]));
        assert_eq!(all(&blocks.tree).expect("all").len(), 4);
    }

    #[test]
    fn a_large_snapshot_is_a_block_of_its_own() {
        let (_dir, _db, blocks) = blocks();
        let big = vec![b'x'; MAX_BYTES + 1];
        let snapshots = vec![
            (k(1), value(1, 0)),
            (k(2), big.clone()),
            (k(3), value(3, 0)),
        ];
        write(&blocks, &snapshots);
        assert_eq!(blocks.tree.len(), 3);
        check_invariants(&blocks.tree);
        assert_eq!(get(&blocks, 2), Some(big));
    }

    #[test]
    fn an_unreadable_block_reads_as_empty_is_replaced_and_stops_an_export() {
        let (_dir, _db, blocks) = blocks();
        write(&blocks, &[(k(1), value(1, 0)), (k(2), value(2, 0))]);
        blocks
            .tree
            .insert(k(1), &[0, 0, 0, 9, 1][..])
            .expect("insert");
        let err = all(&blocks.tree).expect_err("unreadable");
        assert!(
            err.to_string().contains("session_blocks/1/devin-00001"),
            "{err}"
        );
        assert_eq!(get(&blocks, 2), None);
        write(&blocks, &[(k(2), value(2, 1))]);
        assert_eq!(get(&blocks, 2), Some(value(2, 1)));
        assert_eq!(all(&blocks.tree).expect("readable again").len(), 1);
    }

    #[test]
    fn chunks_are_even_and_within_the_limits() {
        // By count: entries of 10 bytes (key, value and lengths), 64 to a block.
        let keys: Vec<Vec<u8>> = (0..200u8).map(|n| vec![n]).collect();
        let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_slice(), &b"v"[..])).collect();
        let sizes: Vec<usize> = chunks(&entries).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![50, 50, 50, 50]);
        assert_eq!(chunks(&entries[..64]).len(), 1);
        assert_eq!(
            chunks(&entries[..65])
                .iter()
                .map(|c| c.len())
                .collect::<Vec<_>>(),
            vec![33, 32]
        );
        assert!(chunks(&[]).is_empty());
        // By bytes: 640-byte snapshots, 2 to a block.
        let big = vec![b'x'; 640];
        let entries: Vec<(&[u8], &[u8])> = keys
            .iter()
            .map(|k| (k.as_slice(), big.as_slice()))
            .collect();
        let sizes: Vec<usize> = chunks(&entries).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![2; 100]);
    }
}
