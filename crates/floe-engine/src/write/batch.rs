//! [`WriteBatch`], a group of writes applied all or nothing, and its log payload encoding.
//!
//! A batch keeps its operations already encoded in the exact byte layout of its
//! write-ahead log record, so committing it costs no re-encoding: the commit leader
//! stamps the first sequence number into the header and hands the bytes to the log.
//!
//! Payload layout (LEB128 varints, see `docs/format-log.md`):
//!
//! ```text
//! +---------------------+--------------+-------+-------+-----+
//! | first seqno: varint | count: varint| op 0  | op 1  | ... |
//! +---------------------+--------------+-------+-------+-----+
//! op (put):       tag=1 u8 | varint key len | key | varint value len | value
//! op (delete):    tag=0 u8 | varint key len | key
//! op (put in):    tag=3 u8 | varint keyspace | varint key len | key | varint value len | value
//! op (delete in): tag=2 u8 | varint keyspace | varint key len | key
//! op (delete range):    tag=4 u8 | varint start len | start | varint end len | end
//! op (delete from):     tag=5 u8 | varint start len | start
//! op (delete range in): tag=6 u8 | varint keyspace | varint start len | start | varint end len | end
//! op (delete from in):  tag=7 u8 | varint keyspace | varint start len | start
//! ```
//!
//! A range deletion covers `[start, end)`; "delete from" has no upper bound. The batch
//! turns every [`RangeBounds`] into that form (an excluded start `k` or an included end
//! `k` becomes `k` followed by a zero byte, the next key after `k`) and leaves out a range
//! that holds no key.
//!
//! Operations on the `"default"` keyspace use the short forms, which are the whole format
//! of a database without keyspaces, so its log costs nothing more than it did.
//!
//! The header is varints because most batches are single small writes, whose log record
//! it would otherwise dominate: a 12-byte fixed header would be 9% of a 16-byte-key,
//! 100-byte-value put's record; the varints take 2 to 4 bytes for sequence numbers below
//! 2^21. The batch reserves [`HEADER_ROOM`] bytes in front of its operations and writes
//! the header right-aligned into them, so the payload is one contiguous slice.
//!
//! Operation `i` of a batch whose first sequence number is `s` carries sequence number
//! `s + i`, so a later operation on the same key in one batch wins.

use std::cell::Cell;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;
use floe_core::coding::{Decoder, MAX_VARINT_LEN, put_length_prefixed, put_varint, write_varint};
use floe_core::range_del::successor;
use floe_core::{MAX_SEQNO, SeqNo, ValueKind};
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::keyspace::{DEFAULT_ID, Keyspace, KeyspaceId, KeyspaceRef};
use crate::txn::Validation;

/// Bytes reserved in front of the operations for the header: the longest varint of a
/// `u64` sequence number (10 bytes) and of a `u32` count (5 bytes).
const HEADER_ROOM: usize = MAX_VARINT_LEN + 5;

/// The largest buffer [`WriteBatch::recycle`] keeps (one per thread).
const MAX_SPARE_REP: usize = 16 << 10;

thread_local! {
    /// The buffer of this thread's last committed batch, for its next one.
    static SPARE_REP: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A group of puts and deletes that `Db::write` applies atomically: after a crash
/// either every operation of the batch is recovered or none is, and no reader ever sees
/// half of it.
///
/// Operations apply in the order they were added, so a later put or delete of a key
/// overrides an earlier one in the same batch. Keys and values are arbitrary byte
/// strings; the empty key and the empty value are valid.
///
/// ```
/// use floe_engine::WriteBatch;
///
/// let mut batch = WriteBatch::new();
/// batch.put("apple", "red");
/// batch.delete("banana");
/// batch.put(b"", Vec::<u8>::new()); // the empty key and value are valid
/// assert_eq!(batch.len(), 3);
/// // db.write(batch)?;
/// ```
#[derive(Clone)]
pub struct WriteBatch {
    /// [`HEADER_ROOM`] bytes, the last of which hold the header, then the encoded
    /// operations. The payload is `rep[start..]`. The header is written when the batch is
    /// stamped ([`WriteBatch::set_seqno`]), cleared or turned into its payload, not on
    /// every push: until then it may hold an older count.
    rep: Vec<u8>,
    /// Where the header, and so the payload, starts in `rep`.
    start: usize,
    /// The sequence number of the first operation (zero until stamped).
    first: SeqNo,
    /// The number of operations; a written header holds it as a `u32` when it fits.
    count: usize,
    /// The bytes of all keys and values, for memtable accounting.
    data_size: usize,
    /// The keyspaces that `put_in` and `delete_in` named, each once, so that the write
    /// can refuse a dropped keyspace or one of another database.
    keyspaces: SmallVec<[Arc<KeyspaceRef>; 2]>,
    /// A transaction's commit: what the commit leader validates before it logs the batch.
    validation: Option<Arc<Validation>>,
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch::with_capacity(HEADER_ROOM)
    }
}

impl fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The raw payload would drown the reader; the shape of the batch is what matters.
        f.debug_struct("WriteBatch")
            .field("len", &self.count)
            .field("data_size", &self.data_size)
            .field("ops_size", &(self.rep.len() - HEADER_ROOM))
            .finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch of the one put `key` -> `value`, allocated once (what `Db::put` commits).
    pub(crate) fn single_put(key: &[u8], value: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::with_op_capacity(key.len() + value.len());
        batch.put(key, value);
        batch
    }

    /// A batch of the one deletion of `key`, allocated once (what `Db::delete` commits).
    pub(crate) fn single_delete(key: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::with_op_capacity(key.len());
        batch.delete(key);
        batch
    }

    /// A batch of the one put `key` -> `value` in `keyspace`, allocated once (what
    /// `Keyspace::put` commits).
    pub(crate) fn single_put_in(keyspace: &Keyspace, key: &[u8], value: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::with_op_capacity(key.len() + value.len());
        batch.put_in(keyspace, key, value);
        batch
    }

    /// A batch of the one deletion of `key` in `keyspace`, allocated once.
    pub(crate) fn single_delete_in(keyspace: &Keyspace, key: &[u8]) -> WriteBatch {
        let mut batch = WriteBatch::with_op_capacity(key.len());
        batch.delete_in(keyspace, key);
        batch
    }

    /// An empty batch with room for one operation of `data` key and value bytes: the
    /// kind byte, a keyspace varint and two varint lengths of at most 5, 10 and 10 bytes
    /// come on top.
    fn with_op_capacity(data: usize) -> WriteBatch {
        WriteBatch::with_capacity(HEADER_ROOM + 1 + 5 + 2 * 10 + data)
    }

    /// An empty batch whose encoding has room for `capacity` bytes (in this thread's spare
    /// buffer if it is large enough; see [`WriteBatch::recycle`]).
    fn with_capacity(capacity: usize) -> WriteBatch {
        let capacity = capacity.max(HEADER_ROOM);
        let mut rep = SPARE_REP.take();
        if rep.capacity() < capacity {
            rep = Vec::with_capacity(capacity);
        }
        rep.clear();
        rep.resize(HEADER_ROOM, 0);
        let mut batch = WriteBatch {
            rep,
            start: HEADER_ROOM,
            first: 0,
            count: 0,
            data_size: 0,
            keyspaces: SmallVec::new(),
            validation: None,
        };
        batch.write_header();
        batch
    }

    /// Keeps the buffer of a committed batch as this thread's spare, for its next batch,
    /// unless it is larger than [`MAX_SPARE_REP`]: a thread that writes one small batch
    /// after another then allocates nothing for their encodings.
    pub(crate) fn recycle(self) {
        if self.rep.capacity() <= MAX_SPARE_REP {
            SPARE_REP.set(self.rep);
        }
    }

    /// Encodes `first` and the count right-aligned into the header room.
    fn write_header(&mut self) {
        // A count beyond u32 is refused by `validate` before the payload is ever used;
        // the header then holds a saturated value that nothing reads.
        let count = u32::try_from(self.count).unwrap_or(u32::MAX);
        let mut header = [0u8; HEADER_ROOM];
        let mut len = write_varint(&mut header, self.first);
        len += write_varint(&mut header[len..], u64::from(count));
        self.start = HEADER_ROOM - len;
        self.rep[self.start..HEADER_ROOM].copy_from_slice(&header[..len]);
    }

    /// Adds a write of `value` under `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.rep.push(TAG_PUT);
        put_length_prefixed(&mut self.rep, key);
        put_length_prefixed(&mut self.rep, value);
        self.data_size += key.len() + value.len();
        self.count += 1;
    }

    /// Adds a deletion of `key` (deleting a key that does not exist is not an error).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        let key = key.as_ref();
        self.rep.push(TAG_DELETE);
        put_length_prefixed(&mut self.rep, key);
        self.data_size += key.len();
        self.count += 1;
    }

    /// Adds a write of `value` under `key` in `keyspace`. A batch may mix keyspaces; it is
    /// atomic across them.
    pub fn put_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let id = self.note_keyspace(keyspace);
        self.push_op(id, OpKind::Put, key.as_ref(), value.as_ref());
    }

    /// Adds a deletion of `key` in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) {
        let id = self.note_keyspace(keyspace);
        self.push_op(id, OpKind::Delete, key.as_ref(), &[]);
    }

    /// Adds the deletion of every key in `range`, as one operation whatever the number of
    /// keys it covers. Operations apply in the order they were added: a put added after
    /// it, to a key in the range, survives it. An empty or inverted range adds nothing.
    ///
    /// ```
    /// use floe_engine::WriteBatch;
    ///
    /// let mut batch = WriteBatch::new();
    /// batch.delete_range("a".."m"); // a, b, ..., every key below "m"
    /// batch.delete_range("x"..);    // every key from "x" on
    /// batch.delete_range("q".."c"); // inverted: nothing
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn delete_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&mut self, range: R) {
        self.push_range(DEFAULT_ID, &range);
    }

    /// Adds the deletion of every key in `range` in `keyspace`, like
    /// [`WriteBatch::delete_range`].
    pub fn delete_range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        keyspace: &Keyspace,
        range: R,
    ) {
        if let Some((start, end)) = half_open(&range) {
            let id = self.note_keyspace(keyspace);
            self.push_half_open(id, &start, end.as_deref());
        }
    }

    fn push_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&mut self, id: KeyspaceId, range: &R) {
        if let Some((start, end)) = half_open(range) {
            self.push_half_open(id, &start, end.as_deref());
        }
    }

    /// Adds the deletion of `[start, end)` (`end` `None`: no upper bound) in keyspace `id`.
    fn push_half_open(&mut self, id: KeyspaceId, start: &[u8], end: Option<&[u8]>) {
        match end {
            Some(end) => self.push_op(id, OpKind::DeleteRange, start, end),
            None => self.push_op(id, OpKind::DeleteFrom, start, &[]),
        }
    }

    /// Adds an operation in keyspace `id` as decoded from a payload, without a keyspace
    /// handle: for rebuilding a decoded batch. `key` is the start of a range deletion and
    /// `value` its end; the value of a delete or a delete-from is ignored.
    pub(crate) fn push_op(&mut self, id: KeyspaceId, kind: OpKind, key: &[u8], value: &[u8]) {
        let default = id == DEFAULT_ID;
        match (default, kind) {
            (true, OpKind::Put) => return self.put(key, value),
            (true, OpKind::Delete) => return self.delete(key),
            (true, OpKind::DeleteRange) => self.rep.push(TAG_DELETE_RANGE),
            (true, OpKind::DeleteFrom) => self.rep.push(TAG_DELETE_FROM),
            (false, OpKind::Put) => self.rep.push(TAG_PUT_IN),
            (false, OpKind::Delete) => self.rep.push(TAG_DELETE_IN),
            (false, OpKind::DeleteRange) => self.rep.push(TAG_DELETE_RANGE_IN),
            (false, OpKind::DeleteFrom) => self.rep.push(TAG_DELETE_FROM_IN),
        }
        if !default {
            put_varint(&mut self.rep, u64::from(id));
        }
        put_length_prefixed(&mut self.rep, key);
        self.data_size += key.len();
        if kind.has_value() {
            put_length_prefixed(&mut self.rep, value);
            self.data_size += value.len();
        }
        self.count += 1;
    }

    /// Remembers `keyspace` among the batch's keyspaces; returns its id.
    fn note_keyspace(&mut self, keyspace: &Keyspace) -> KeyspaceId {
        let handle = keyspace.handle();
        if !self.keyspaces.iter().any(|k| Arc::ptr_eq(k, handle)) {
            self.keyspaces.push(Arc::clone(handle));
        }
        handle.id
    }

    /// The keyspaces that `put_in` and `delete_in` named.
    pub(crate) fn keyspaces(&self) -> &[Arc<KeyspaceRef>] {
        &self.keyspaces
    }

    /// Makes this batch a transaction's commit, which the commit leader validates first.
    pub(crate) fn set_validation(&mut self, validation: Arc<Validation>) {
        self.validation = Some(validation);
    }

    /// The validation of a transaction's commit, if this batch is one.
    pub(crate) fn validation(&self) -> Option<&Arc<Validation>> {
        self.validation.as_ref()
    }

    /// The operations of the batch, in order (stamped or not).
    pub(crate) fn ops(&self) -> impl Iterator<Item = Op<'_>> {
        Ops::new(&self.rep[HEADER_ROOM..]).map_while(|op| op)
    }

    /// The number of operations in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch holds no operation.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation, keeping the allocation for reuse.
    pub fn clear(&mut self) {
        self.rep.truncate(HEADER_ROOM);
        self.first = 0;
        self.count = 0;
        self.data_size = 0;
        self.keyspaces.clear();
        self.write_header();
    }

    /// Checks every operation against the size limits and the count against the header
    /// width; the error names the first offending operation.
    pub(crate) fn validate(&self, max_key: usize, max_value: usize) -> Result<()> {
        if u32::try_from(self.count).is_err() {
            return Err(Error::invalid(format!(
                "a write batch holds {} operations; at most {} fit in one batch",
                self.count,
                u32::MAX
            )));
        }
        for (index, op) in Ops::new(&self.rep[HEADER_ROOM..]).enumerate() {
            // The batch encoded these bytes itself, so they always parse.
            let Some((_, kind, key, value)) = op else {
                return Err(Error::invalid(format!(
                    "write batch operation {index} is malformed"
                )));
            };
            if kind.is_range() {
                // A range's bounds are keys, but an included end or an excluded start `k`
                // is stored as the next key, `k` and a zero byte.
                if let Some(bound) = [key, value].into_iter().find(|b| b.len() > max_key + 1) {
                    return Err(Error::invalid(format!(
                        "write batch operation {index} (delete range) has a bound of {} bytes; the limit for keys is {max_key}",
                        bound.len()
                    )));
                }
                continue;
            }
            if key.len() > max_key {
                return Err(Error::invalid(format!(
                    "write batch operation {index} ({}) has a key of {} bytes; the limit is {max_key}",
                    kind.name(),
                    key.len()
                )));
            }
            if value.len() > max_value {
                return Err(Error::invalid(format!(
                    "write batch operation {index} (put) has a value of {} bytes; the limit is {max_value}",
                    value.len()
                )));
            }
        }
        Ok(())
    }

    /// Stamps the sequence number of the first operation into the header.
    pub(crate) fn set_seqno(&mut self, first: SeqNo) {
        self.first = first;
        self.write_header();
    }

    /// The sequence number stamped by [`WriteBatch::set_seqno`] (zero before).
    pub(crate) fn first_seqno(&self) -> SeqNo {
        self.first
    }

    /// The log record payload: the header followed by the operations. Valid once the
    /// batch is stamped with [`WriteBatch::set_seqno`] (the commit leader always does),
    /// since the header is not rewritten on every push.
    pub(crate) fn payload(&self) -> &[u8] {
        debug_assert_eq!(
            split_header(&self.rep[self.start..]).map(|(first, count, _)| (first, count as usize)),
            Some((self.first, self.count)),
            "payload of a batch pushed to after it was stamped"
        );
        &self.rep[self.start..]
    }

    /// The bytes of all keys and values, for memtable accounting.
    pub(crate) fn approximate_size(&self) -> usize {
        self.data_size
    }

    /// The payload as shared bytes, so that decoded keys and values can borrow from it.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn into_payload(mut self) -> Bytes {
        self.write_header();
        let mut payload = Bytes::from(self.rep);
        // Moves the start without copying or allocating.
        bytes::Buf::advance(&mut payload, self.start);
        payload
    }
}

/// Encodes the batches of a commit group, stamped with consecutive sequence numbers from
/// `first`, as the payload of one log record: the header of `first` and the total count,
/// then every batch's operations in order. Replay reads it as one batch whose operation
/// `i` has sequence number `first + i`, exactly the numbers the batches were stamped
/// with. Returns `false`, leaving `out` unspecified, if the total count does not fit the
/// header's 32 bits; the caller then logs the batches one record each.
pub(crate) fn encode_group<'a>(
    first: SeqNo,
    batches: impl Iterator<Item = &'a WriteBatch> + Clone,
    out: &mut Vec<u8>,
) -> bool {
    let total: usize = batches.clone().map(WriteBatch::len).sum();
    let Ok(total) = u32::try_from(total) else {
        return false;
    };
    out.clear();
    let mut header = [0u8; HEADER_ROOM];
    let mut len = write_varint(&mut header, first);
    len += write_varint(&mut header[len..], u64::from(total));
    out.extend_from_slice(&header[..len]);
    let mut next = first;
    for batch in batches {
        debug_assert_eq!(
            batch.first_seqno(),
            next,
            "stamped consecutively from first"
        );
        next += batch.len() as u64;
        out.extend_from_slice(&batch.rep[HEADER_ROOM..]);
    }
    true
}

/// Splits a payload into its header (first sequence number, count) and its encoded
/// operations; `None` if the header is truncated or malformed.
fn split_header(payload: &[u8]) -> Option<(SeqNo, u32, &[u8])> {
    let mut header = Decoder::new(payload);
    let first = header.varint()?;
    let count = header.varint_u32()?;
    Some((first, count, header.remaining()))
}

/// What one operation of a batch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum OpKind {
    /// Sets the key to the value.
    Put,
    /// Deletes the key.
    Delete,
    /// Deletes every key in `[key, value)`.
    DeleteRange,
    /// Deletes every key from `key` on.
    DeleteFrom,
}

impl OpKind {
    /// The point write this operation is, if it is one.
    pub(crate) fn point(self) -> Option<ValueKind> {
        match self {
            OpKind::Put => Some(ValueKind::Put),
            OpKind::Delete => Some(ValueKind::Delete),
            OpKind::DeleteRange | OpKind::DeleteFrom => None,
        }
    }

    /// Whether the operation deletes a range.
    pub(crate) fn is_range(self) -> bool {
        self.point().is_none()
    }

    /// Whether a second byte string (a value, or a range's end) follows the key.
    fn has_value(self) -> bool {
        matches!(self, OpKind::Put | OpKind::DeleteRange)
    }

    fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Delete => "delete",
            OpKind::DeleteRange | OpKind::DeleteFrom => "delete range",
        }
    }
}

/// `range` as the half-open `[start, end)` a range deletion stores (`end` `None`: no upper
/// bound), or `None` if it holds no key.
pub(crate) fn half_open<K: AsRef<[u8]> + ?Sized, R: RangeBounds<K> + ?Sized>(
    range: &R,
) -> Option<(Bytes, Option<Bytes>)> {
    let start = match range.start_bound() {
        Bound::Included(key) => Bytes::copy_from_slice(key.as_ref()),
        Bound::Excluded(key) => successor(key.as_ref()),
        Bound::Unbounded => Bytes::new(),
    };
    let end = match range.end_bound() {
        Bound::Included(key) => Some(successor(key.as_ref())),
        Bound::Excluded(key) => Some(Bytes::copy_from_slice(key.as_ref())),
        Bound::Unbounded => None,
    };
    match &end {
        Some(end) if *end <= start => None,
        _ => Some((start, end)),
    }
}

/// The tag of a put in the `"default"` keyspace (the byte of [`ValueKind::Put`]).
const TAG_PUT: u8 = ValueKind::Put as u8;
/// The tag of a deletion in the `"default"` keyspace (the byte of [`ValueKind::Delete`]).
const TAG_DELETE: u8 = ValueKind::Delete as u8;
/// The tag of a put in a keyspace other than `"default"`.
const TAG_PUT_IN: u8 = 3;
/// The tag of a deletion in a keyspace other than `"default"`.
const TAG_DELETE_IN: u8 = 2;
/// The tag of a range deletion `[start, end)` in the `"default"` keyspace.
const TAG_DELETE_RANGE: u8 = 4;
/// The tag of a deletion of every key from `start` on in the `"default"` keyspace.
const TAG_DELETE_FROM: u8 = 5;
/// The tag of a range deletion in a keyspace other than `"default"`.
const TAG_DELETE_RANGE_IN: u8 = 6;
/// The tag of a delete-from in a keyspace other than `"default"`.
const TAG_DELETE_FROM_IN: u8 = 7;

/// One operation decoded from a batch payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BatchOp {
    /// The keyspace it writes in.
    pub(crate) keyspace: KeyspaceId,
    /// What the operation does.
    pub(crate) kind: OpKind,
    /// The user key, or a range's start: a zero-copy slice of the payload.
    pub(crate) key: Bytes,
    /// The value, or a range's end (empty for a delete and a delete-from): a zero-copy
    /// slice of the payload.
    pub(crate) value: Bytes,
}

/// Walks encoded operations, yielding `None` once for a malformed operation and then
/// stopping. Values of deletes are empty slices.
struct Ops<'a> {
    decoder: Decoder<'a>,
    failed: bool,
}

impl<'a> Ops<'a> {
    fn new(ops: &'a [u8]) -> Ops<'a> {
        Ops {
            decoder: Decoder::new(ops),
            failed: false,
        }
    }

    #[inline]
    fn next_op(&mut self) -> Option<Op<'a>> {
        let (in_keyspace, kind) = match self.decoder.u8()? {
            TAG_PUT => (false, OpKind::Put),
            TAG_DELETE => (false, OpKind::Delete),
            TAG_PUT_IN => (true, OpKind::Put),
            TAG_DELETE_IN => (true, OpKind::Delete),
            TAG_DELETE_RANGE => (false, OpKind::DeleteRange),
            TAG_DELETE_FROM => (false, OpKind::DeleteFrom),
            TAG_DELETE_RANGE_IN => (true, OpKind::DeleteRange),
            TAG_DELETE_FROM_IN => (true, OpKind::DeleteFrom),
            _ => return None,
        };
        let keyspace = if in_keyspace {
            self.decoder.varint_u32()?
        } else {
            DEFAULT_ID
        };
        let key = self.decoder.length_prefixed()?;
        let value = if kind.has_value() {
            self.decoder.length_prefixed()?
        } else {
            &[]
        };
        Some((keyspace, kind, key, value))
    }
}

/// One decoded operation: keyspace, kind, key (or a range's start), value (or a range's
/// end; empty for a delete and a delete-from).
pub(crate) type Op<'a> = (KeyspaceId, OpKind, &'a [u8], &'a [u8]);

impl<'a> Iterator for Ops<'a> {
    type Item = Option<Op<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.decoder.is_empty() {
            return None;
        }
        let op = self.next_op();
        self.failed = op.is_none();
        Some(op)
    }
}

/// Checks a batch payload and returns its first sequence number and its operation count.
///
/// Any malformed payload is `Corruption`: a short header, a truncated operation, an
/// unknown kind, fewer or more operations than the header counts, trailing bytes, or
/// sequence numbers beyond [`MAX_SEQNO`]. A payload this accepts is one that
/// [`batch_ops`] walks to the end.
pub(crate) fn check_batch(payload: &[u8]) -> Result<(SeqNo, u64)> {
    let Some((first, count, ops)) = split_header(payload) else {
        return Err(Error::corruption(format!(
            "write batch payload of {} bytes has no complete header (a varint sequence number and a varint count of at most 32 bits)",
            payload.len()
        )));
    };
    let count = u64::from(count);
    if first
        .checked_add(count)
        .is_none_or(|end| end > MAX_SEQNO + 1)
    {
        return Err(Error::corruption(format!(
            "write batch of {count} operations from seqno {first} exceeds the largest sequence number"
        )));
    }
    let mut seen = 0u64;
    for op in Ops::new(ops) {
        if op.is_none() {
            return Err(Error::corruption(format!(
                "write batch operation {seen} is truncated or has an unknown kind"
            )));
        }
        if seen >= count {
            return Err(Error::corruption(format!(
                "write batch holds more operations than the {count} its header counts"
            )));
        }
        seen += 1;
    }
    if seen != count {
        return Err(Error::corruption(format!(
            "write batch holds {seen} operations but its header counts {count}"
        )));
    }
    Ok((first, count))
}

/// The operations of a payload that [`check_batch`] accepted, in order, as
/// `(keyspace, kind, key, value)` borrowed from `payload` (the value of a delete is empty).
/// Operation `i` has seqno `first + i`. On a payload that `check_batch` refuses, the walk
/// stops at the first malformed operation.
pub(crate) fn batch_op_slices(payload: &[u8]) -> impl Iterator<Item = Op<'_>> {
    let body = split_header(payload).map_or(&[][..], |(_, _, ops)| ops);
    Ops::new(body).map_while(|op| op)
}

/// The operations of a payload that [`check_batch`] accepted, like [`batch_op_slices`],
/// with keys and values as zero-copy [`Bytes`] slices of `payload`.
pub(crate) fn batch_ops(payload: &Bytes) -> impl Iterator<Item = BatchOp> + '_ {
    batch_op_slices(payload).map(|(keyspace, kind, key, value)| BatchOp {
        keyspace,
        kind,
        key: payload.slice_ref(key),
        value: if value.is_empty() {
            Bytes::new()
        } else {
            payload.slice_ref(value)
        },
    })
}

/// Decodes a batch payload into its first sequence number and its operations, whose keys
/// and values are zero-copy slices of `payload`. Operation `i` has seqno `first + i`.
///
/// # Errors
/// `Corruption` for any payload that [`check_batch`] refuses.
#[cfg(any(test, fuzzing))]
pub(crate) fn decode_batch(payload: &Bytes) -> Result<(SeqNo, Vec<BatchOp>)> {
    let (first, count) = check_batch(payload)?;
    // The check walked every operation, so `count` is the true number: it cannot make
    // this allocation larger than the payload justifies.
    let mut ops = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    ops.extend(batch_ops(payload));
    Ok((first, ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WriteBatch {
        let mut batch = WriteBatch::new();
        batch.put("apple", "red");
        batch.delete("banana");
        batch.put("", "");
        batch.put(vec![0xff; 300], [7u8; 200]);
        batch.delete(b"");
        batch
    }

    #[test]
    fn encodes_and_decodes_every_op_zero_copy() {
        let mut batch = sample();
        assert_eq!(batch.len(), 5);
        assert!(!batch.is_empty());
        assert_eq!(batch.approximate_size(), 5 + 3 + 6 + 500);
        batch.set_seqno(100);
        let payload = batch.into_payload();
        let (first, ops) = decode_batch(&payload).unwrap();
        assert_eq!(first, 100);
        let expected = [
            (OpKind::Put, &b"apple"[..], &b"red"[..]),
            (OpKind::Delete, b"banana", b""),
            (OpKind::Put, b"", b""),
            (OpKind::Put, &[0xff; 300], &[7; 200]),
            (OpKind::Delete, b"", b""),
        ];
        assert_eq!(ops.len(), expected.len());
        for (op, (kind, key, value)) in ops.iter().zip(expected) {
            assert_eq!(
                (op.keyspace, op.kind, &op.key[..], &op.value[..]),
                (DEFAULT_ID, kind, key, value)
            );
            // Zero-copy: every non-empty slice points into the payload's buffer.
            for part in [&op.key, &op.value] {
                if !part.is_empty() {
                    let start = part.as_ptr() as usize - payload.as_ptr() as usize;
                    assert!(start + part.len() <= payload.len());
                }
            }
        }
    }

    #[test]
    fn the_header_is_two_varints() {
        let mut batch = WriteBatch::new();
        batch.put("k", "v");
        batch.set_seqno(300);
        assert_eq!(batch.payload(), &[0xac, 0x02, 1, 1, 1, b'k', 1, b'v']);
        assert_eq!(batch.first_seqno(), 300);
        // Restamping writes the header anew: the count the batch grew to, the new seqno.
        for _ in 0..199 {
            batch.delete("d");
        }
        batch.set_seqno(MAX_SEQNO);
        let mut expected = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xc8, 0x01];
        expected.extend_from_slice(&[1, 1, b'k', 1, b'v']);
        assert_eq!(&batch.payload()[..15], &expected[..]);
        // The largest header of all still fits its room.
        batch.set_seqno(u64::MAX);
        assert_eq!(
            batch.payload()[..10],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let payload = batch.into_payload();
        assert_eq!(payload[10..12], [0xc8, 0x01]);
    }

    #[test]
    fn clear_resets_to_an_empty_batch() {
        let mut batch = sample();
        batch.set_seqno(9);
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.len(), 0);
        assert_eq!(batch.approximate_size(), 0);
        assert_eq!(batch.payload(), WriteBatch::default().payload());
        let (first, ops) = decode_batch(&batch.into_payload()).unwrap();
        assert_eq!((first, ops.len()), (0, 0));
        assert!(format!("{:?}", WriteBatch::new()).contains("len: 0"));
    }

    #[test]
    fn validate_names_the_offending_op() {
        let batch = sample();
        batch.validate(300, 200).unwrap();
        let err = batch.validate(299, 200).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }));
        assert!(err.to_string().contains("operation 3"), "{err}");
        let err = batch.validate(300, 199).unwrap_err();
        assert!(err.to_string().contains("value of 200 bytes"), "{err}");
        let err = batch.validate(4, 1000).unwrap_err();
        assert!(err.to_string().contains("operation 0"), "{err}");
    }

    #[test]
    fn malformed_payloads_are_corruption() {
        let mut batch = sample();
        batch.set_seqno(1);
        let good = batch.payload().to_vec();
        let corrupt = |bytes: Vec<u8>| {
            let err = decode_batch(&Bytes::from(bytes)).unwrap_err();
            assert!(matches!(err, Error::Corruption { .. }), "{err}");
        };
        // Every truncation: short header, truncated op, or fewer ops than counted.
        for cut in 0..good.len() {
            corrupt(good[..cut].to_vec());
        }
        // Trailing bytes, an extra op beyond the count, an unknown kind.
        let mut trailing = good.clone();
        trailing.push(0);
        corrupt(trailing);
        let mut extra = good.clone();
        extra.extend_from_slice(&[1, 0, 0]);
        corrupt(extra);
        // The header of seqno 1 and count 5 is the two bytes [1, 5].
        assert_eq!(good[..2], [1, 5]);
        let mut unknown = good.clone();
        unknown[2] = 9;
        corrupt(unknown);
        // A count larger than the ops present.
        let mut counted = good.clone();
        counted[1] = 6;
        corrupt(counted);
        // A count beyond u32, and a seqno varint that never ends.
        let mut wide = vec![1, 0x80, 0x80, 0x80, 0x80, 0x10];
        wide.extend_from_slice(&good[2..]);
        corrupt(wide);
        corrupt(vec![0x80; 12]);
        // Sequence numbers beyond MAX_SEQNO.
        let mut high = WriteBatch::new();
        for _ in 0..5 {
            high.delete("k");
        }
        high.set_seqno(MAX_SEQNO - 3);
        corrupt(high.payload().to_vec());
    }

    /// A group record decodes to every operation of its batches, with the sequence
    /// numbers the batches were stamped with; a group of one is the batch's own payload.
    #[test]
    fn a_group_record_is_the_batches_as_one() {
        let mut batches = vec![
            sample(),
            WriteBatch::single_put(b"k", b"v"),
            WriteBatch::new(),
        ];
        batches[2].delete("gone");
        let mut next = 1000;
        for batch in &mut batches {
            batch.set_seqno(next);
            next += batch.len() as u64;
        }
        let mut record = vec![0xee; 3];
        assert!(encode_group(1000, batches.iter(), &mut record));
        let (first, ops) = decode_batch(&Bytes::from(record)).unwrap();
        assert_eq!(first, 1000);
        let expected: Vec<BatchOp> = batches
            .iter()
            .flat_map(|b| batch_ops(&b.clone().into_payload()).collect::<Vec<_>>())
            .collect();
        assert_eq!(ops, expected);
        assert_eq!(ops.len() as u64, next - 1000);

        let mut one = Vec::new();
        assert!(encode_group(1000, batches[..1].iter(), &mut one));
        assert_eq!(one, batches[0].payload());
    }

    #[test]
    fn the_last_seqno_may_be_max_seqno() {
        let mut batch = WriteBatch::new();
        batch.put("a", "1");
        batch.put("b", "2");
        batch.set_seqno(MAX_SEQNO - 1);
        let (first, ops) = decode_batch(&batch.into_payload()).unwrap();
        assert_eq!((first, ops.len()), (MAX_SEQNO - 1, 2));
    }

    /// A header that counts far more operations than the payload holds. That no room is
    /// reserved for them is checked with a counting allocator in `tests/batch_alloc.rs`.
    #[test]
    fn a_huge_count_is_refused() {
        let mut payload = vec![0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        payload.extend_from_slice(&[1, 0, 0]);
        assert!(decode_batch(&Bytes::from(payload)).is_err());
    }

    #[test]
    fn keyspace_ops_carry_their_keyspace() {
        let mut batch = WriteBatch::new();
        batch.put("a", "1");
        batch.push_op(7, OpKind::Put, b"b", b"2");
        batch.push_op(300, OpKind::Delete, b"c", b"");
        batch.set_seqno(5);
        let payload = batch.into_payload();
        let (_, ops) = decode_batch(&payload).unwrap();
        let got: Vec<_> = ops
            .iter()
            .map(|op| (op.keyspace, op.kind, &op.key[..], &op.value[..]))
            .collect();
        assert_eq!(
            got,
            [
                (DEFAULT_ID, OpKind::Put, &b"a"[..], &b"1"[..]),
                (7, OpKind::Put, b"b", b"2"),
                (300, OpKind::Delete, b"c", b""),
            ]
        );
        // The keyspace varint of a put-in cut short is corruption, like any cut.
        for cut in 0..payload.len() {
            assert!(decode_batch(&payload.slice(..cut)).is_err());
        }
    }

    #[test]
    fn range_deletions_encode_every_bound_as_half_open() {
        let key = |k: &[u8]| Bytes::copy_from_slice(k);
        assert_eq!(
            half_open(&(&b"a"[..]..&b"m"[..])),
            Some((key(b"a"), Some(key(b"m"))))
        );
        assert_eq!(
            half_open(&(&b"a"[..]..=&b"m"[..])),
            Some((key(b"a"), Some(key(b"m\0"))))
        );
        assert_eq!(half_open::<&[u8], _>(&(..)), Some((key(b""), None)));
        assert_eq!(
            half_open::<&[u8], _>(&(Bound::Excluded(&b"a"[..]), Bound::Unbounded)),
            Some((key(b"a\0"), None))
        );
        // Empty and inverted ranges hold no key.
        assert_eq!(half_open(&(&b"m"[..]..&b"a"[..])), None);
        assert_eq!(half_open(&(&b"m"[..]..&b"m"[..])), None);
        assert_eq!(
            half_open::<&[u8], _>(&(Bound::Excluded(&b"m"[..]), Bound::Included(&b"m"[..]))),
            None
        );
        assert_eq!(
            half_open(&(&b"m"[..]..=&b"m"[..])),
            Some((key(b"m"), Some(key(b"m\0"))))
        );

        let mut batch = WriteBatch::new();
        batch.delete_range("a".."m");
        batch.delete_range("x"..);
        batch.delete_range("q".."c");
        batch.push_op(9, OpKind::DeleteRange, b"b", b"c");
        batch.push_op(9, OpKind::DeleteFrom, b"z", b"ignored");
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.approximate_size(), 2 + 1 + 2 + 1);
        batch.set_seqno(1);
        let payload = batch.into_payload();
        let (_, ops) = decode_batch(&payload).unwrap();
        let got: Vec<_> = ops
            .iter()
            .map(|op| (op.keyspace, op.kind, &op.key[..], &op.value[..]))
            .collect();
        assert_eq!(
            got,
            [
                (DEFAULT_ID, OpKind::DeleteRange, &b"a"[..], &b"m"[..]),
                (DEFAULT_ID, OpKind::DeleteFrom, b"x", b""),
                (9, OpKind::DeleteRange, b"b", b"c"),
                (9, OpKind::DeleteFrom, b"z", b""),
            ]
        );
        for cut in 0..payload.len() {
            assert!(decode_batch(&payload.slice(..cut)).is_err());
        }
    }

    #[test]
    fn a_range_bound_may_be_one_byte_past_the_key_limit() {
        let mut batch = WriteBatch::new();
        batch.delete_range(&[1u8; 10][..]..=&[1u8; 10][..]);
        batch.validate(10, 0).unwrap();
        let mut batch = WriteBatch::new();
        batch.delete_range(&[1u8; 12][..]..);
        let err = batch.validate(10, 0).unwrap_err();
        assert!(err.to_string().contains("bound of 12 bytes"), "{err}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let seed = floe_testkit::seed("random_bytes_never_panic");
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
        let mut good = sample();
        good.set_seqno(5);
        let good = good.payload().to_vec();
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..rand::Rng::random_range(&mut rng, 1..4) {
                let at = rand::Rng::random_range(&mut rng, 0..bytes.len());
                bytes[at] = rand::Rng::random(&mut rng);
            }
            if let Ok((_, ops)) = decode_batch(&Bytes::from(bytes)) {
                // Whatever decodes re-encodes to a payload that decodes the same way.
                let mut again = WriteBatch::new();
                for op in &ops {
                    again.push_op(op.keyspace, op.kind, &op.key, &op.value);
                }
                assert_eq!(decode_batch(&again.into_payload()).unwrap().1, ops);
            }
        }
    }
}
