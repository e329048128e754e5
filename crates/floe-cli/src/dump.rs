//! The commands that print a file's contents: `dump-table`, `dump-log` and `manifest`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use floe::KeyspaceOptions;
use floe_engine::inspect::{
    self, EntryKind, LogRecord, ManifestEdit, ManifestTable, TableKey, WriteKind,
};
use serde::Serialize;

use crate::context::{Context, human_bytes};
use crate::failure::Outcome;
use crate::verify::TornTailJson;

/// An internal key in JSON.
#[derive(Serialize)]
struct KeyJson {
    key: String,
    seqno: u64,
    kind: &'static str,
}

fn entry_kind(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Delete => "delete",
        _ => "put",
    }
}

impl KeyJson {
    fn new(ctx: &Context, key: &TableKey) -> KeyJson {
        KeyJson {
            key: ctx.show(&key.user_key),
            seqno: key.seqno,
            kind: entry_kind(key.kind),
        }
    }
}

/// `key @seqno kind`, as the human dumps show an internal key.
fn show_key(ctx: &Context, key: &TableKey) -> String {
    format!(
        "{} @{} {}",
        ctx.show(&key.user_key),
        key.seqno,
        entry_kind(key.kind)
    )
}

/// A table entry in JSON.
#[derive(Serialize)]
struct EntryJson {
    key: String,
    seqno: u64,
    kind: &'static str,
    value: String,
}

/// A range tombstone fragment in JSON.
#[derive(Serialize)]
struct FragmentJson {
    start: String,
    end: Option<String>,
    seqnos: Vec<u64>,
}

/// What `dump-table --json` prints.
#[derive(Serialize)]
struct TableJson {
    file: String,
    bytes: u64,
    data_blocks: usize,
    entries: u64,
    smallest: KeyJson,
    largest: KeyJson,
    min_seqno: u64,
    max_seqno: u64,
    range_tombstones: Vec<FragmentJson>,
    /// The entries printed (all of them, or `--limit`).
    listed: Vec<EntryJson>,
}

/// `dump-table FILE`.
pub(crate) fn dump_table(ctx: &mut Context, file: &Path, limit: Option<usize>) -> Outcome {
    let table = inspect::read_table(file)?;
    let limit = limit.unwrap_or(usize::MAX);
    if ctx.json {
        let listed = table
            .iter()
            .take(limit)
            .map(|entry| {
                let entry = entry?;
                Ok(EntryJson {
                    key: ctx.show(&entry.key.user_key),
                    seqno: entry.key.seqno,
                    kind: entry_kind(entry.key.kind),
                    value: ctx.show(&entry.value),
                })
            })
            .collect::<Outcome<Vec<_>>>()?;
        let json = TableJson {
            file: table.file.clone(),
            bytes: table.len,
            data_blocks: table.data_blocks,
            entries: table.entries,
            smallest: KeyJson::new(ctx, &table.smallest),
            largest: KeyJson::new(ctx, &table.largest),
            min_seqno: table.min_seqno,
            max_seqno: table.max_seqno,
            range_tombstones: table
                .range_tombstones
                .iter()
                .map(|fragment| FragmentJson {
                    start: ctx.show(&fragment.start),
                    end: fragment.end.as_deref().map(|end| ctx.show(end)),
                    seqnos: fragment.seqnos.clone(),
                })
                .collect(),
            listed,
        };
        return ctx.print_json(&json);
    }
    let (smallest, largest) = (
        show_key(ctx, &table.smallest),
        show_key(ctx, &table.largest),
    );
    let out = &mut ctx.out;
    writeln!(out, "table {}", table.file)?;
    writeln!(out, "  size              {}", human_bytes(table.len))?;
    writeln!(out, "  data blocks       {}", table.data_blocks)?;
    writeln!(out, "  entries           {}", table.entries)?;
    writeln!(out, "  smallest          {smallest}")?;
    writeln!(out, "  largest           {largest}")?;
    writeln!(
        out,
        "  sequence numbers  {} to {}",
        table.min_seqno, table.max_seqno
    )?;
    writeln!(
        out,
        "  range tombstones  {} fragments",
        table.range_tombstones.len()
    )?;
    for fragment in &table.range_tombstones {
        let end = fragment
            .end
            .as_deref()
            .map_or_else(|| "(no end)".to_owned(), |end| ctx.encoding.render(end));
        let seqnos: Vec<String> = fragment.seqnos.iter().map(u64::to_string).collect();
        writeln!(
            out,
            "    [{}, {end}) @{}",
            ctx.encoding.render(&fragment.start),
            seqnos.join(",")
        )?;
    }
    writeln!(out, "entries:")?;
    for entry in table.iter().take(limit) {
        let entry = entry?;
        let key = show_key(ctx, &entry.key);
        match entry.key.kind {
            EntryKind::Delete => writeln!(ctx.out, "  {key}")?,
            _ => {
                let value = ctx.show(&entry.value);
                writeln!(ctx.out, "  {key} = {value}")?;
            }
        }
    }
    Ok(())
}

fn write_kind(kind: WriteKind) -> &'static str {
    match kind {
        WriteKind::Put => "put",
        WriteKind::Delete => "delete",
        WriteKind::DeleteRange => "delete-range",
        WriteKind::DeleteFrom => "delete-from",
        _ => "other",
    }
}

/// One write in `dump-log --json`.
#[derive(Serialize)]
struct WriteJson {
    seqno: u64,
    keyspace: u32,
    keyspace_name: Option<String>,
    kind: &'static str,
    key: String,
    /// The value of a put, the end of a range deletion.
    value: Option<String>,
}

/// One record in `dump-log --json`.
#[derive(Serialize)]
struct RecordJson {
    offset: u64,
    bytes: u64,
    first_seqno: u64,
    writes: Vec<WriteJson>,
}

/// What `dump-log --json` prints.
#[derive(Serialize)]
struct LogJson<'a> {
    file: &'a str,
    bytes: u64,
    durable_through: u64,
    records: Vec<RecordJson>,
    torn_tail: Option<TornTailJson<'a>>,
}

/// The names of the keyspaces of the database `file` lies in, by id: empty if its
/// directory holds no readable manifest (a segment copied elsewhere).
fn keyspace_names(file: &Path) -> BTreeMap<u32, String> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    inspect::read_manifest(dir)
        .map(|manifest| {
            manifest
                .keyspaces
                .into_iter()
                .map(|keyspace| (keyspace.id, keyspace.name))
                .collect()
        })
        .unwrap_or_default()
}

fn record_json(ctx: &Context, names: &BTreeMap<u32, String>, record: &LogRecord) -> RecordJson {
    RecordJson {
        offset: record.offset,
        bytes: record.len,
        first_seqno: record.first_seqno,
        writes: record
            .writes
            .iter()
            .map(|write| WriteJson {
                seqno: write.seqno,
                keyspace: write.keyspace,
                keyspace_name: names.get(&write.keyspace).cloned(),
                kind: write_kind(write.kind),
                key: ctx.show(&write.key),
                value: matches!(write.kind, WriteKind::Put | WriteKind::DeleteRange)
                    .then(|| ctx.show(&write.value)),
            })
            .collect(),
    }
}

/// `dump-log FILE`.
pub(crate) fn dump_log(ctx: &mut Context, file: &Path) -> Outcome {
    let segment = inspect::read_log_segment(file)?;
    let names = keyspace_names(file);
    if ctx.json {
        let json = LogJson {
            file: &segment.file,
            bytes: segment.len,
            durable_through: segment.durable_through,
            records: segment
                .records
                .iter()
                .map(|record| record_json(ctx, &names, record))
                .collect(),
            torn_tail: TornTailJson::new(segment.torn_tail.as_ref()),
        };
        return ctx.print_json(&json);
    }
    writeln!(
        ctx.out,
        "log {}: {}, {} records, durable through byte {}",
        segment.file,
        human_bytes(segment.len),
        segment.records.len(),
        segment.durable_through
    )?;
    for record in &segment.records {
        writeln!(
            ctx.out,
            "record at offset {} ({} bytes): {} writes from seqno {}",
            record.offset,
            record.len,
            record.writes.len(),
            record.first_seqno
        )?;
        for write in &record.writes {
            let keyspace = names
                .get(&write.keyspace)
                .cloned()
                .unwrap_or_else(|| format!("#{}", write.keyspace));
            let key = ctx.show(&write.key);
            let rest = match write.kind {
                WriteKind::Put => format!(" = {}", ctx.show(&write.value)),
                WriteKind::DeleteRange => format!(" .. {}", ctx.show(&write.value)),
                WriteKind::DeleteFrom => " ..".to_owned(),
                _ => String::new(),
            };
            writeln!(
                ctx.out,
                "  {} {} [{keyspace}] {key}{rest}",
                write.seqno,
                write_kind(write.kind)
            )?;
        }
    }
    if let Some(tail) = &segment.torn_tail {
        writeln!(
            ctx.out,
            "torn tail at offset {} ({}): dropped by recovery",
            tail.offset, tail.reason
        )?;
    }
    Ok(())
}

/// A table of a manifest edit in JSON.
#[derive(Serialize)]
struct TableRecordJson {
    level: u32,
    number: u64,
    bytes: u64,
    entries: u64,
    smallest: KeyJson,
    largest: KeyJson,
    min_seqno: u64,
    max_seqno: u64,
}

impl TableRecordJson {
    fn new(ctx: &Context, table: &ManifestTable) -> TableRecordJson {
        TableRecordJson {
            level: table.level,
            number: table.number,
            bytes: table.size,
            entries: table.entries,
            smallest: KeyJson::new(ctx, &table.smallest),
            largest: KeyJson::new(ctx, &table.largest),
            min_seqno: table.min_seqno,
            max_seqno: table.max_seqno,
        }
    }
}

/// A removed table in JSON.
#[derive(Serialize)]
struct RemovedJson {
    level: u32,
    number: u64,
}

/// One version edit in `manifest --json`.
#[derive(Serialize)]
struct EditJson {
    offset: u64,
    keyspace: u32,
    log_number: Option<u64>,
    log_seqno: Option<u64>,
    next_file_number: Option<u64>,
    last_seqno: Option<u64>,
    next_keyspace_id: Option<u32>,
    keyspace_log_number: Option<u64>,
    created_keyspace: Option<String>,
    dropped: bool,
    added: Vec<TableRecordJson>,
    removed: Vec<RemovedJson>,
}

impl EditJson {
    fn new(ctx: &Context, edit: &ManifestEdit) -> EditJson {
        EditJson {
            offset: edit.offset,
            keyspace: edit.keyspace,
            log_number: edit.log_number,
            log_seqno: edit.log_seqno,
            next_file_number: edit.next_file_number,
            last_seqno: edit.last_seqno,
            next_keyspace_id: edit.next_keyspace_id,
            keyspace_log_number: edit.keyspace_log_number,
            created_keyspace: edit.created.as_ref().map(|created| created.name.clone()),
            dropped: edit.dropped,
            added: edit
                .added
                .iter()
                .map(|table| TableRecordJson::new(ctx, table))
                .collect(),
            removed: edit
                .removed
                .iter()
                .map(|&(level, number)| RemovedJson { level, number })
                .collect(),
        }
    }
}

/// A keyspace in `manifest --json`.
#[derive(Serialize)]
struct KeyspaceJson {
    id: u32,
    name: String,
    tables: Vec<TableRecordJson>,
}

/// What `manifest --json` prints.
#[derive(Serialize)]
struct ManifestJson<'a> {
    file: String,
    bytes: u64,
    log_number: u64,
    edits: Vec<EditJson>,
    torn_tail: Option<TornTailJson<'a>>,
    keyspaces: Vec<KeyspaceJson>,
}

/// `manifest`: the edits of the live manifest, then the keyspaces they leave.
pub(crate) fn manifest(ctx: &mut Context) -> Outcome {
    let manifest = inspect::read_manifest(ctx.dir()?)?;
    let file = format!("MANIFEST-{:06}", manifest.number);
    if ctx.json {
        let json = ManifestJson {
            file,
            bytes: manifest.len,
            log_number: manifest.log_number,
            edits: manifest
                .edits
                .iter()
                .map(|edit| EditJson::new(ctx, edit))
                .collect(),
            torn_tail: TornTailJson::new(manifest.torn_tail.as_ref()),
            keyspaces: manifest
                .keyspaces
                .iter()
                .map(|keyspace| KeyspaceJson {
                    id: keyspace.id,
                    name: keyspace.name.clone(),
                    tables: keyspace
                        .tables
                        .iter()
                        .map(|table| TableRecordJson::new(ctx, table))
                        .collect(),
                })
                .collect(),
        };
        return ctx.print_json(&json);
    }
    let names: BTreeMap<u32, String> = manifest
        .keyspaces
        .iter()
        .map(|keyspace| (keyspace.id, keyspace.name.clone()))
        .collect();
    writeln!(
        ctx.out,
        "{file}: {}, {} edits",
        human_bytes(manifest.len),
        manifest.edits.len()
    )?;
    for edit in &manifest.edits {
        let line = edit_line(edit, &names);
        writeln!(ctx.out, "{line}")?;
        for table in &edit.added {
            let line = format!(
                "    + L{} {:06}.sst {} entries {}, {} .. {}",
                table.level,
                table.number,
                human_bytes(table.size),
                table.entries,
                show_key(ctx, &table.smallest),
                show_key(ctx, &table.largest)
            );
            writeln!(ctx.out, "{line}")?;
        }
        for (level, number) in &edit.removed {
            writeln!(ctx.out, "    - L{level} {number:06}.sst")?;
        }
    }
    if let Some(tail) = &manifest.torn_tail {
        writeln!(
            ctx.out,
            "torn tail at offset {} ({}): an edit that was never installed",
            tail.offset, tail.reason
        )?;
    }
    writeln!(ctx.out, "log number {}", manifest.log_number)?;
    for keyspace in &manifest.keyspaces {
        let bytes: u64 = keyspace.tables.iter().map(|t| t.size).sum();
        writeln!(
            ctx.out,
            "keyspace {} {:?}: {} tables, {}",
            keyspace.id,
            keyspace.name,
            keyspace.tables.len(),
            human_bytes(bytes)
        )?;
    }
    Ok(())
}

/// The options of a created keyspace as `{name: value, ...}`: their debug form without
/// the `Some(..)` around each value (every option a manifest records is set) and without
/// the compaction filter, which is given at each open rather than recorded.
fn options_text(options: &KeyspaceOptions) -> String {
    let debug = format!("{options:?}");
    let body = debug
        .strip_prefix("KeyspaceOptions ")
        .unwrap_or(&debug)
        .replace(", compaction_filter: None", "");
    let mut text = String::with_capacity(body.len());
    let mut rest = body.as_str();
    while let Some(at) = rest.find("Some(") {
        text.push_str(&rest[..at]);
        rest = &rest[at + "Some(".len()..];
        // The values are numbers and booleans: the next ')' closes the `Some`.
        match rest.find(')') {
            Some(close) => {
                text.push_str(&rest[..close]);
                rest = &rest[close + 1..];
            }
            None => break,
        }
    }
    text.push_str(rest);
    text
}

/// The first line of an edit: its offset, keyspace and the fields it sets.
fn edit_line(edit: &ManifestEdit, names: &BTreeMap<u32, String>) -> String {
    let keyspace = match (&edit.created, names.get(&edit.keyspace)) {
        (Some(created), _) => created.name.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => format!("#{}", edit.keyspace),
    };
    let mut fields = Vec::new();
    let scalars = [
        ("log_number", edit.log_number),
        ("log_seqno", edit.log_seqno),
        ("next_file_number", edit.next_file_number),
        ("last_seqno", edit.last_seqno),
        ("next_keyspace_id", edit.next_keyspace_id.map(u64::from)),
        ("keyspace_log_number", edit.keyspace_log_number),
    ];
    for (name, value) in scalars {
        if let Some(value) = value {
            fields.push(format!("{name}={value}"));
        }
    }
    if let Some(created) = &edit.created {
        fields.push(format!(
            "create {:?} {}",
            created.name,
            options_text(&created.options)
        ));
    }
    if edit.dropped {
        fields.push("drop".to_owned());
    }
    format!(
        "edit at offset {} [{keyspace}] {}",
        edit.offset,
        fields.join(" ")
    )
}
