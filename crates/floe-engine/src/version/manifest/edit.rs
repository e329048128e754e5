//! [`VersionEdit`]: one change to the set of tables, and its tagged on-disk encoding.
//!
//! An edit is a sequence of tagged fields; each tag is a varint, followed by the field's
//! value (see `docs/format-log.md`). The decoder refuses unknown tags, a scalar field given
//! twice, malformed values and impossible values (a table whose smallest key is above its
//! largest) with `Corruption`: the manifest record's checksum already vouches for the
//! bytes, so anything it cannot read was written by a different format or a bug.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use bytes::Bytes;
use floe_core::coding::{Decoder, put_length_prefixed, put_u64, put_varint};
use floe_core::{InternalKey, MAX_SEQNO, SeqNo, unpack_trailer};

use crate::error::{Error, Result};
use crate::keyspace::{DEFAULT_ID, KeyspaceId, KeyspaceOptions};

/// Tag of [`VersionEdit::log_number`].
const TAG_LOG_NUMBER: u64 = 1;
/// Tag of [`VersionEdit::next_file_number`].
const TAG_NEXT_FILE_NUMBER: u64 = 2;
/// Tag of [`VersionEdit::last_seqno`].
const TAG_LAST_SEQNO: u64 = 3;
/// Tag of one entry of [`VersionEdit::added`].
const TAG_ADDED_TABLE: u64 = 4;
/// Tag of one entry of [`VersionEdit::removed`].
const TAG_REMOVED_TABLE: u64 = 5;
/// Tag of [`VersionEdit::log_seqno`].
const TAG_LOG_SEQNO: u64 = 6;
/// Tag of [`VersionEdit::keyspace`].
const TAG_KEYSPACE: u64 = 7;
/// Tag of [`VersionEdit::keyspace_log_number`].
const TAG_KEYSPACE_LOG_NUMBER: u64 = 8;
/// Tag of [`VersionEdit::next_keyspace_id`].
const TAG_NEXT_KEYSPACE_ID: u64 = 9;
/// Tag of [`VersionEdit::created`].
const TAG_CREATED_KEYSPACE: u64 = 10;
/// Tag of [`VersionEdit::dropped`].
const TAG_DROPPED_KEYSPACE: u64 = 11;

/// A keyspace as the edit that creates it records it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KeyspaceDef {
    pub(crate) name: String,
    /// Its tree options, every one set.
    pub(crate) options: KeyspaceOptions,
}

/// A table file as the manifest records it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TableFile {
    /// The file number: the table lives in `{number:06}.sst`.
    pub(crate) number: u64,
    /// The file size in bytes.
    pub(crate) size: u64,
    /// The number of entries (versions, tombstones included).
    pub(crate) entries: u64,
    /// The smallest internal key in the table.
    pub(crate) smallest: InternalKey,
    /// The largest internal key in the table.
    pub(crate) largest: InternalKey,
    /// The smallest sequence number in the table.
    pub(crate) min_seqno: SeqNo,
    /// The largest sequence number in the table.
    pub(crate) max_seqno: SeqNo,
}

/// One change to the version: fields that are `None` or empty leave the version as it is.
///
/// The database-wide fields are the log number and its first sequence number, the next
/// file number, the last sequence number and the next keyspace id. The others apply to
/// the one keyspace [`VersionEdit::keyspace`] names: the tables added and removed, its log
/// number, and its creation or drop. A manifest snapshot is one edit per keyspace.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct VersionEdit {
    /// Logs with a number below this are obsolete: the writes in them are in tables.
    pub(crate) log_number: Option<u64>,
    /// The first sequence number that the segment at `log_number` can hold: replay
    /// expects its first batch to carry it.
    pub(crate) log_seqno: Option<SeqNo>,
    /// The next unused file number.
    pub(crate) next_file_number: Option<u64>,
    /// The largest sequence number in use by the tables (and logs below `log_number`).
    pub(crate) last_seqno: Option<SeqNo>,
    /// Tables added, with their level.
    pub(crate) added: Vec<(u32, TableFile)>,
    /// Tables removed: level and file number.
    pub(crate) removed: Vec<(u32, u64)>,
    /// The keyspace the tables, the keyspace log number, `created` and `dropped` belong
    /// to (`"default"`, 0, unless the edit says otherwise).
    pub(crate) keyspace: KeyspaceId,
    /// The keyspace's writes in logs below this number are in its tables.
    pub(crate) keyspace_log_number: Option<u64>,
    /// The next unused keyspace id: ids are never reused, so a log record of a dropped
    /// keyspace never replays into a new one.
    pub(crate) next_keyspace_id: Option<KeyspaceId>,
    /// The keyspace is created with this name and these options.
    pub(crate) created: Option<KeyspaceDef>,
    /// The keyspace is dropped, with all its tables.
    pub(crate) dropped: bool,
}

fn put_internal_key(buf: &mut Vec<u8>, key: &InternalKey) {
    put_length_prefixed(buf, &key.user_key);
    put_u64(buf, key.trailer());
}

fn corrupt(what: &str) -> Error {
    Error::corruption(format!("version edit: {what}"))
}

/// Takes a varint, naming `what` in the error if it is missing or malformed.
fn varint(decoder: &mut Decoder<'_>, what: &str) -> Result<u64> {
    decoder
        .varint()
        .ok_or_else(|| corrupt(&format!("{what} is truncated or malformed")))
}

fn keyspace_id(decoder: &mut Decoder<'_>, what: &str) -> Result<KeyspaceId> {
    decoder
        .varint_u32()
        .ok_or_else(|| corrupt(&format!("{what} is truncated or too large")))
}

fn level(decoder: &mut Decoder<'_>) -> Result<u32> {
    decoder
        .varint_u32()
        .ok_or_else(|| corrupt("a table level is truncated or too large"))
}

fn seqno(decoder: &mut Decoder<'_>, what: &str) -> Result<SeqNo> {
    let value = varint(decoder, what)?;
    if value > MAX_SEQNO {
        return Err(corrupt(&format!(
            "{what} {value} exceeds the largest sequence number"
        )));
    }
    Ok(value)
}

fn internal_key(decoder: &mut Decoder<'_>, what: &str) -> Result<InternalKey> {
    let user_key = decoder
        .length_prefixed()
        .ok_or_else(|| corrupt(&format!("the {what} key is truncated")))?;
    let trailer = decoder
        .u64()
        .ok_or_else(|| corrupt(&format!("the {what} key's trailer is truncated")))?;
    let (seqno, kind) = unpack_trailer(trailer)
        .ok_or_else(|| corrupt(&format!("the {what} key has an unknown kind")))?;
    Ok(InternalKey::new(
        Bytes::copy_from_slice(user_key),
        seqno,
        kind,
    ))
}

fn table_file(decoder: &mut Decoder<'_>) -> Result<TableFile> {
    let table = TableFile {
        number: varint(decoder, "a table number")?,
        size: varint(decoder, "a table size")?,
        entries: varint(decoder, "a table entry count")?,
        smallest: internal_key(decoder, "smallest")?,
        largest: internal_key(decoder, "largest")?,
        min_seqno: seqno(decoder, "a table's smallest sequence number")?,
        max_seqno: seqno(decoder, "a table's largest sequence number")?,
    };
    if table.smallest > table.largest || table.min_seqno > table.max_seqno {
        return Err(corrupt(&format!(
            "table {} has its smallest key or sequence number above its largest",
            table.number
        )));
    }
    Ok(table)
}

/// Sets a scalar field, refusing a second occurrence: the encoder writes each once.
fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<()> {
    if slot.is_some() {
        return Err(corrupt(&format!("the {name} field appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

impl VersionEdit {
    /// The edit's on-disk encoding: scalar fields, then removed tables, then added tables.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let scalars = [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE_NUMBER, self.next_file_number),
            (TAG_LAST_SEQNO, self.last_seqno),
            (TAG_LOG_SEQNO, self.log_seqno),
            (TAG_NEXT_KEYSPACE_ID, self.next_keyspace_id.map(u64::from)),
            (
                TAG_KEYSPACE,
                (self.keyspace != DEFAULT_ID).then_some(u64::from(self.keyspace)),
            ),
            (TAG_KEYSPACE_LOG_NUMBER, self.keyspace_log_number),
            (TAG_DROPPED_KEYSPACE, self.dropped.then_some(1)),
        ];
        for (tag, value) in scalars {
            if let Some(value) = value {
                put_varint(&mut buf, tag);
                put_varint(&mut buf, value);
            }
        }
        if let Some(def) = &self.created {
            put_varint(&mut buf, TAG_CREATED_KEYSPACE);
            put_length_prefixed(&mut buf, def.name.as_bytes());
            put_length_prefixed(&mut buf, &def.options.encode());
        }
        for &(level, number) in &self.removed {
            put_varint(&mut buf, TAG_REMOVED_TABLE);
            put_varint(&mut buf, u64::from(level));
            put_varint(&mut buf, number);
        }
        for (level, table) in &self.added {
            put_varint(&mut buf, TAG_ADDED_TABLE);
            put_varint(&mut buf, u64::from(*level));
            put_varint(&mut buf, table.number);
            put_varint(&mut buf, table.size);
            put_varint(&mut buf, table.entries);
            put_internal_key(&mut buf, &table.smallest);
            put_internal_key(&mut buf, &table.largest);
            put_varint(&mut buf, table.min_seqno);
            put_varint(&mut buf, table.max_seqno);
        }
        buf
    }

    /// Decodes an edit; any unknown tag or malformed field is `Corruption`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<VersionEdit> {
        let mut edit = VersionEdit::default();
        let mut decoder = Decoder::new(bytes);
        while !decoder.is_empty() {
            match varint(&mut decoder, "a field tag")? {
                TAG_LOG_NUMBER => {
                    let value = varint(&mut decoder, "the log number")?;
                    set_once(&mut edit.log_number, value, "log number")?;
                }
                TAG_NEXT_FILE_NUMBER => {
                    let value = varint(&mut decoder, "the next file number")?;
                    set_once(&mut edit.next_file_number, value, "next file number")?;
                }
                TAG_LAST_SEQNO => {
                    let value = seqno(&mut decoder, "the last sequence number")?;
                    set_once(&mut edit.last_seqno, value, "last sequence number")?;
                }
                TAG_LOG_SEQNO => {
                    let value = seqno(&mut decoder, "the log's first sequence number")?;
                    set_once(&mut edit.log_seqno, value, "log sequence number")?;
                }
                TAG_KEYSPACE => {
                    let value = keyspace_id(&mut decoder, "the keyspace id")?;
                    let mut slot = (edit.keyspace != DEFAULT_ID).then_some(edit.keyspace);
                    set_once(&mut slot, value, "keyspace")?;
                    edit.keyspace = value;
                }
                TAG_KEYSPACE_LOG_NUMBER => {
                    let value = varint(&mut decoder, "the keyspace log number")?;
                    set_once(&mut edit.keyspace_log_number, value, "keyspace log number")?;
                }
                TAG_NEXT_KEYSPACE_ID => {
                    let value = keyspace_id(&mut decoder, "the next keyspace id")?;
                    set_once(&mut edit.next_keyspace_id, value, "next keyspace id")?;
                }
                TAG_DROPPED_KEYSPACE => {
                    if varint(&mut decoder, "the dropped flag")? != 1 || edit.dropped {
                        return Err(corrupt("the dropped flag is malformed or repeated"));
                    }
                    edit.dropped = true;
                }
                TAG_CREATED_KEYSPACE => {
                    let name = decoder
                        .length_prefixed()
                        .and_then(|name| std::str::from_utf8(name).ok())
                        .ok_or_else(|| corrupt("a keyspace name is truncated or not UTF-8"))?
                        .to_owned();
                    let options = decoder
                        .length_prefixed()
                        .ok_or_else(|| corrupt("keyspace options are truncated"))?;
                    let def = KeyspaceDef {
                        name,
                        options: KeyspaceOptions::decode(options)?,
                    };
                    set_once(&mut edit.created, def, "created keyspace")?;
                }
                TAG_ADDED_TABLE => {
                    let level = level(&mut decoder)?;
                    edit.added.push((level, table_file(&mut decoder)?));
                }
                TAG_REMOVED_TABLE => {
                    let level = level(&mut decoder)?;
                    let number = varint(&mut decoder, "a removed table's number")?;
                    edit.removed.push((level, number));
                }
                tag => return Err(corrupt(&format!("unknown field tag {tag}"))),
            }
        }
        Ok(edit)
    }
}

#[cfg(test)]
#[expect(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "a test panics to fail"
)]
pub(crate) mod tests {
    use floe_core::ValueKind;

    use super::*;

    /// A table with the given number and keys, for tests across the manifest modules.
    pub(crate) fn table(number: u64, smallest: &str, largest: &str) -> TableFile {
        TableFile {
            number,
            size: number.saturating_mul(4096).saturating_add(17),
            entries: 100 + number % 1000,
            smallest: InternalKey::new(smallest.to_owned(), 90 + number % 1000, ValueKind::Put),
            largest: InternalKey::new(largest.to_owned(), 3, ValueKind::Delete),
            min_seqno: 3,
            max_seqno: 90 + number % 1000,
        }
    }

    /// An edit that sets every field.
    pub(crate) fn full_edit() -> VersionEdit {
        VersionEdit {
            log_number: Some(12),
            next_file_number: Some(40),
            last_seqno: Some(MAX_SEQNO),
            added: vec![(0, table(7, "a", "m")), (3, table(u64::MAX, "", "\u{ff}"))],
            removed: vec![(1, 5), (u32::MAX, 0)],
            log_seqno: Some(77),
            keyspace: 9,
            keyspace_log_number: Some(11),
            next_keyspace_id: Some(10),
            created: Some(KeyspaceDef {
                name: "index".to_owned(),
                options: KeyspaceOptions::default().block_size(128),
            }),
            dropped: true,
        }
    }

    #[test]
    fn edits_round_trip() {
        for edit in [
            VersionEdit::default(),
            full_edit(),
            VersionEdit {
                last_seqno: Some(0),
                ..VersionEdit::default()
            },
        ] {
            assert_eq!(VersionEdit::decode(&edit.encode()).unwrap(), edit);
        }
        assert!(VersionEdit::default().encode().is_empty());
    }

    #[test]
    fn malformed_edits_are_corruption() {
        let good = full_edit().encode();
        let is_corruption =
            |bytes: &[u8]| matches!(VersionEdit::decode(bytes), Err(Error::Corruption { .. }));
        // Every strict truncation cuts a field short (none ends exactly on a boundary
        // except the field starts, which decode to a shorter but valid edit).
        for cut in 0..good.len() {
            let decoded = VersionEdit::decode(&good[..cut]);
            if let Ok(edit) = decoded {
                assert_ne!(edit, full_edit(), "cut at {cut}");
            }
        }
        assert!(is_corruption(&[99, 0]));
        assert!(is_corruption(&[0]));
        assert!(is_corruption(&[
            TAG_LOG_NUMBER as u8,
            1,
            TAG_LOG_NUMBER as u8,
            2
        ]));
        assert!(is_corruption(&[TAG_REMOVED_TABLE as u8, 1]));
        // A sequence number beyond MAX_SEQNO.
        let mut high = vec![TAG_LAST_SEQNO as u8];
        put_varint(&mut high, MAX_SEQNO + 1);
        assert!(is_corruption(&high));
        // A table whose smallest key is above its largest.
        let backwards = VersionEdit {
            added: vec![(0, table(1, "z", "a"))],
            ..VersionEdit::default()
        };
        assert!(is_corruption(&backwards.encode()));
        // A key trailer with an unknown kind.
        let mut bad_kind = VersionEdit {
            added: vec![(0, table(1, "a", "b"))],
            ..VersionEdit::default()
        }
        .encode();
        // Layout: tag, level, number, size (2 bytes), entries, key len, "a", trailer.
        let trailer_at = 1 + 1 + 1 + 2 + 1 + 1 + 1;
        bad_kind[trailer_at] = 9;
        assert!(is_corruption(&bad_kind));
    }
}
