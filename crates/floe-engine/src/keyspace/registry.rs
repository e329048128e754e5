//! Creating and dropping keyspaces, and [`Keyspaces`], the handles of the live ones by
//! name.
//!
//! Both are manifest edits, durable before they return. A creation edit carries the new
//! keyspace's id, name and tree options (and the next id, so that ids are never reused);
//! no log record can name the keyspace before it is durable. A drop edit removes the
//! keyspace with all its tables at once; the tables' files are deleted once no reader
//! holds them (and by the next open otherwise: a table the manifest does not list is an
//! orphan), and its log records are skipped at replay. So a crash in the middle of either
//! leaves the keyspace wholly there or wholly gone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{DEFAULT_ID, DEFAULT_NAME, KeyspaceId, KeyspaceOptions, KeyspaceRef, check_name};
use crate::error::{Error, Result};
use crate::filter::FilterRef;
use crate::options::Options;
use crate::shared::Shared;
use crate::sync::lock;
use crate::version::manifest::{KeyspaceDef, VersionEdit};
use crate::version::{Tree, Version};

/// The handles of the live keyspaces by name (a leaf of the lock order).
#[derive(Debug, Default)]
pub(crate) struct Keyspaces {
    by_name: Mutex<BTreeMap<String, Arc<KeyspaceRef>>>,
}

impl Keyspaces {
    /// The registry of a database whose keyspaces are `live` (name and id).
    pub(crate) fn new(db: u64, live: impl IntoIterator<Item = (String, KeyspaceId)>) -> Keyspaces {
        let by_name = live
            .into_iter()
            .map(|(name, id)| {
                let handle = Arc::new(KeyspaceRef::new(id, &name, db));
                (name, handle)
            })
            .collect();
        Keyspaces {
            by_name: Mutex::new(by_name),
        }
    }

    /// The handle of keyspace `name`, if it exists.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<KeyspaceRef>> {
        lock(&self.by_name).get(name).cloned()
    }

    /// Every keyspace's name, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        lock(&self.by_name).keys().cloned().collect()
    }

    fn insert(&self, handle: Arc<KeyspaceRef>) {
        lock(&self.by_name).insert(handle.name.clone(), handle);
    }

    fn remove(&self, name: &str) -> Option<Arc<KeyspaceRef>> {
        lock(&self.by_name).remove(name)
    }
}

impl Shared {
    /// The handle of keyspace `name`, creating the keyspace with `options` (durably) if it
    /// does not exist.
    pub(crate) fn open_keyspace(
        &self,
        name: &str,
        options: &KeyspaceOptions,
    ) -> Result<Arc<KeyspaceRef>> {
        check_name(name)?;
        if let Some(handle) = self.keyspaces.get(name) {
            if let Some(filter) = options.filter() {
                self.set_compaction_filter(handle.id, filter);
            }
            return Ok(handle);
        }
        self.check_writable()?;
        let tree_options = Arc::new(options.resolve(&self.options)?);
        let mut manifest = lock(&self.manifest);
        // Another thread may have created it meanwhile: creations serialize here.
        if let Some(handle) = self.keyspaces.get(name) {
            return Ok(handle);
        }
        self.check_writable()?;
        let id = manifest.next_keyspace_id();
        let next = id.checked_add(1).ok_or_else(|| {
            Error::invalid("this database has created 2^32 keyspaces; no keyspace id is left")
        })?;
        let edit = VersionEdit {
            keyspace: id,
            created: Some(KeyspaceDef {
                name: name.to_owned(),
                options: KeyspaceOptions::of(&tree_options),
            }),
            next_keyspace_id: Some(next),
            next_file_number: Some(self.file_numbers.peek()),
            ..VersionEdit::default()
        };
        let tree = Tree::new(id, name, tree_options, Version::empty());
        self.install_edit(&mut manifest, &edit, |current| current.with_tree(tree))?;
        let handle = Arc::new(KeyspaceRef::new(id, name, self.uid));
        self.keyspaces.insert(Arc::clone(&handle));
        self.maybe_roll_manifest(&mut manifest)?;
        Ok(handle)
    }

    /// Gives keyspace `id` the compaction filter `filter` (not recorded: it lasts while
    /// the database is open). Compactions that start later use it.
    fn set_compaction_filter(&self, id: KeyspaceId, filter: &FilterRef) {
        self.state.install(|current| match current.tree(id) {
            Some(tree) => {
                let mut options = Options::clone(&tree.options);
                options.compaction_filter = Some(filter.clone());
                current.with_tree(Tree {
                    options: Arc::new(options),
                    ..Tree::clone(tree)
                })
            }
            None => current.clone(),
        });
    }

    /// Drops keyspace `name` with all its data (see the module docs).
    pub(crate) fn drop_keyspace(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NAME {
            return Err(Error::invalid("the \"default\" keyspace cannot be dropped"));
        }
        self.check_writable()?;
        // The log mutex first: no commit group is between loading the state and logging
        // while the keyspace leaves it, and the memory count stays exact.
        let log = lock(&self.log);
        let mut manifest = lock(&self.manifest);
        let Some(handle) = self.keyspaces.get(name) else {
            return Err(Error::invalid(format!("there is no keyspace {name:?}")));
        };
        debug_assert_ne!(handle.id, DEFAULT_ID);
        // Under both mutexes no switch, flush or compaction can change the keyspace: this
        // is the tree the edit removes. Its memtables no longer hold segments back, so the
        // edit also moves the log number to what the other keyspaces need.
        let tree = self.state.load().tree(handle.id).cloned();
        let floor = self
            .state
            .load()
            .without_tree(handle.id)
            .oldest_needed_log(None);
        let log_seqno = lock(&self.segments).start_seqno(floor);
        let edit = VersionEdit {
            keyspace: handle.id,
            dropped: true,
            next_file_number: Some(self.file_numbers.peek()),
            log_number: log_seqno.map(|_| floor),
            log_seqno,
            ..VersionEdit::default()
        };
        self.install_edit(&mut manifest, &edit, |current| {
            current.without_tree(handle.id)
        })?;
        handle.mark_dropped();
        self.keyspaces.remove(name);
        if let Some(tree) = &tree {
            self.memtable_usage.sub(tree.active.mem.approximate_size());
            // Their files go once no reader holds them (iterators and snapshots keep
            // reading what they loaded).
            for table in tree.version.tables() {
                table.mark_obsolete();
            }
        }
        let rolled = self.maybe_roll_manifest(&mut manifest);
        drop(manifest);
        drop(log);
        if log_seqno.is_some() {
            self.remove_segments_below(floor);
        }
        self.background.progressed();
        self.note_level0_stall();
        rolled
    }
}
