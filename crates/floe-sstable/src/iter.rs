//! The table iterator: every version of every key in a user-key range, in internal-key
//! order, from the front, the back, or both.
//!
//! The front and back cursors move independently and remember the position (block,
//! offset) of the last entry each yielded; each stops before reaching the other's, so
//! together they yield every entry exactly once.

use std::ops::Bound;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use floe_core::InternalKey;

use crate::block::{Block, EntryPos};
use crate::error::{Error, Result};
use crate::format::split_internal_key;
use crate::table::TableInner;

/// An entry's position: the index of its data block and its offset within the block.
type Position = (usize, usize);

/// The writer places a restart point every 16 entries, so every key of a block is rebuilt
/// from at most one restart interval of the block's bytes, and a block's keys total at
/// most 16 times its size. A block that claims more is damaged; refusing it keeps a
/// corrupt block from making the reader allocate without bound.
const MAX_KEY_EXPANSION: usize = 16;

/// Iterates over a table's entries in a user-key range; `'static`, `Send`, and it keeps
/// the table's bytes alive. After it yields an error it ends.
#[derive(Debug)]
pub struct TableIter {
    table: Arc<TableInner>,
    lower: Bound<Bytes>,
    upper: Bound<Bytes>,
    front: Option<Front>,
    back: Option<Run>,
    front_pos: Option<Position>,
    back_pos: Option<Position>,
    done: bool,
}

/// The front cursor: decodes one entry at a time, so a seek followed by a few steps
/// decodes only what it returns.
#[derive(Debug)]
struct Front {
    block_idx: usize,
    block: Block,
    /// The key of the entry decoded last.
    key: Vec<u8>,
    /// The entry the initial seek found, not yet returned; its key is in `key`.
    pending: Option<EntryPos>,
    /// The offset of the next entry to decode.
    next: usize,
    /// The chunk that the next returned user keys are copied into.
    arena: BytesMut,
}

/// The size of the chunks that the front cursor copies user keys into.
const KEY_CHUNK: usize = 4096;

/// The entries of one data block that the back cursor has yet to yield, decoded
/// together (a prefix-compressed block can only be decoded forward).
#[derive(Debug)]
struct Run {
    block_idx: usize,
    block: Block,
    entries: std::vec::IntoIter<(InternalKey, EntryPos)>,
}

fn below_lower(lower: &Bound<Bytes>, user_key: &[u8]) -> bool {
    match lower {
        Bound::Unbounded => false,
        Bound::Included(bound) => user_key < &bound[..],
        Bound::Excluded(bound) => user_key <= &bound[..],
    }
}

fn above_upper(upper: &Bound<Bytes>, user_key: &[u8]) -> bool {
    match upper {
        Bound::Unbounded => false,
        Bound::Included(bound) => user_key > &bound[..],
        Bound::Excluded(bound) => user_key >= &bound[..],
    }
}

fn owned(bound: Bound<&[u8]>) -> Bound<Bytes> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(key) => Bound::Included(Bytes::copy_from_slice(key)),
        Bound::Excluded(key) => Bound::Excluded(Bytes::copy_from_slice(key)),
    }
}

impl TableIter {
    pub(crate) fn new(
        table: Arc<TableInner>,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> TableIter {
        TableIter {
            table,
            lower: owned(lower),
            upper: owned(upper),
            front: None,
            back: None,
            front_pos: None,
            back_pos: None,
            done: false,
        }
    }

    /// Decodes the entries of data block `block_idx` up to the upper bound.
    fn load(&self, block_idx: usize, block: Block) -> Result<Run> {
        let table = &self.table;
        let limit = block
            .contents()
            .len()
            .saturating_mul(MAX_KEY_EXPANSION)
            .saturating_add(1024);
        let (mut offset, mut key) = (0, Vec::new());
        let mut spans = Vec::new();
        let mut arena = Vec::new();
        while offset < block.entries_end() {
            let pos = block.decode_at(offset, &mut key)?;
            let (user_key, seqno, kind) = table.parse_key(block_idx, &key)?;
            if above_upper(&self.upper, user_key) {
                break;
            }
            if arena.len() + user_key.len() > limit {
                return Err(Error::corruption(format!(
                    "data block at byte {}: its keys expand to more than {MAX_KEY_EXPANSION} times its size",
                    table.index.handle(block_idx).offset
                )));
            }
            let start = arena.len();
            arena.extend_from_slice(user_key);
            spans.push((start, arena.len(), seqno, kind, pos));
            offset = pos.next;
        }
        // One allocation holds every user key of the run; each key is a slice of it.
        let arena = bytes::Bytes::from(arena);
        let entries: Vec<_> = spans
            .into_iter()
            .map(|(start, end, seqno, kind, pos)| {
                (InternalKey::new(arena.slice(start..end), seqno, kind), pos)
            })
            .collect();
        Ok(Run {
            block_idx,
            block,
            entries: entries.into_iter(),
        })
    }

    fn front_next(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        let table = &self.table;
        if self.front.is_none() {
            let lower = &self.lower;
            let block_idx = match lower {
                Bound::Unbounded => 0,
                Bound::Included(bound) | Bound::Excluded(bound) => {
                    table.index.search(bound, |last_key| {
                        split_internal_key(last_key)
                            .is_some_and(|(user_key, _)| below_lower(lower, user_key))
                    })
                }
            };
            if block_idx == table.index.len() {
                return Ok(None);
            }
            let block = table.data_block_for_seek(block_idx)?;
            let mut key = Vec::new();
            let found = block.seek(&mut key, |k| {
                split_internal_key(k).is_some_and(|(user_key, _)| below_lower(lower, user_key))
            })?;
            let Some(pos) = found else {
                return Err(table.index_mismatch(block_idx));
            };
            self.front = Some(Front {
                block_idx,
                block,
                key,
                pending: Some(pos),
                next: pos.next,
                arena: BytesMut::new(),
            });
        }
        let Some(front) = self.front.as_mut() else {
            return Ok(None);
        };
        let pos = match front.pending.take() {
            Some(pos) => pos,
            None => {
                if front.next >= front.block.entries_end() {
                    let next_idx = front.block_idx + 1;
                    if next_idx >= table.index.len()
                        || self.back_pos.is_some_and(|(b, _)| b < next_idx)
                    {
                        return Ok(None);
                    }
                    front.block = table.data_block(next_idx)?;
                    front.block_idx = next_idx;
                    front.next = 0;
                    front.key.clear();
                }
                let pos = front.block.decode_at(front.next, &mut front.key)?;
                front.next = pos.next;
                pos
            }
        };
        let position = (front.block_idx, pos.offset);
        if self.back_pos.is_some_and(|back| position >= back) {
            return Ok(None);
        }
        let (user_key, seqno, kind) = table.parse_key(front.block_idx, &front.key)?;
        if above_upper(&self.upper, user_key) {
            return Ok(None);
        }
        // Keys are copied into a shared chunk, so a scan allocates once per chunk rather
        // than once per key.
        if front.arena.capacity() - front.arena.len() < user_key.len() {
            front.arena = BytesMut::with_capacity(user_key.len().max(KEY_CHUNK));
        }
        front.arena.extend_from_slice(user_key);
        let user_key = front.arena.split().freeze();
        self.front_pos = Some(position);
        Ok(Some((
            InternalKey::new(user_key, seqno, kind),
            front.block.value(pos),
        )))
    }

    fn back_next(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        if self.back.is_none() {
            let table = &self.table;
            // A table of range tombstones alone has no data block.
            if table.index.len() == 0 {
                return Ok(None);
            }
            let upper = &self.upper;
            let after = match upper {
                Bound::Unbounded => table.index.len(),
                Bound::Included(bound) | Bound::Excluded(bound) => {
                    table.index.search(bound, |last_key| {
                        split_internal_key(last_key)
                            .is_some_and(|(user_key, _)| !above_upper(upper, user_key))
                    })
                }
            };
            // The first block whose last key is above the bound may still begin with keys
            // within it; every later block lies wholly above.
            let start = after.min(table.index.len() - 1);
            let block = table.data_block(start)?;
            self.back = Some(self.load(start, block)?);
        }
        loop {
            let Some(back) = self.back.as_mut() else {
                return Ok(None);
            };
            if let Some((key, pos)) = back.entries.next_back() {
                let position = (back.block_idx, pos.offset);
                if self.front_pos.is_some_and(|front| position <= front)
                    || below_lower(&self.lower, &key.user_key)
                {
                    return Ok(None);
                }
                self.back_pos = Some(position);
                return Ok(Some((key, back.block.value(pos))));
            }
            if back.block_idx == 0 || self.front_pos.is_some_and(|(b, _)| b >= back.block_idx) {
                return Ok(None);
            }
            let prev = back.block_idx - 1;
            let block = self.table.data_block(prev)?;
            self.back = Some(self.load(prev, block)?);
        }
    }

    fn finish(
        &mut self,
        result: Result<Option<(InternalKey, Bytes)>>,
    ) -> Option<Result<(InternalKey, Bytes)>> {
        match result {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

impl Iterator for TableIter {
    type Item = Result<(InternalKey, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.front_next();
        self.finish(result)
    }
}

impl DoubleEndedIterator for TableIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.back_next();
        self.finish(result)
    }
}
