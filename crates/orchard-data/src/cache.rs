//! The local cache: a content-addressed folder (`.dvc/cache/files/md5/ab/cdef…`, legacy `.dvc/cache/ab/…`).
//!
//! Objects enter only under their verified hash and by rename, so a crash never leaves a partial object
//! under a real name, and are made read-only (0444) as DVC makes them. Before an object is linked into the
//! workspace it is checked against the state index (or rehashed), so a cache file changed behind our back
//! is reported and removed rather than checked out.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::collections::HashSet;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};

use crate::config::LinkType;
use crate::error::{DataError, IoContext, Result};
use crate::fsutil;
use crate::hash::{self, DirEntry, HashKind, Oid};
use crate::state::State;

/// Files up to this size are read whole; larger ones are streamed through a writer thread.
const SMALL: u64 = 8 << 20;

pub struct Cache {
    pub root: PathBuf,
    link_types: Vec<LinkType>,
    state: Arc<State>,
    /// Set once a reflink attempt fails with "not supported", so we stop trying on this filesystem.
    no_reflink: AtomicBool,
    /// Folders known to exist, so that thousands of objects cost one `mkdir` per folder, not per object.
    made_dirs: Mutex<HashSet<PathBuf>>,
    /// The leftovers of killed processes are looked for once per process, before its first temporary file.
    swept: std::sync::Once,
}

/// Removes the temporary files that a killed `orchard data` left in the cache (`.object.orchard-tmp.<pid>.<n>`):
/// those older than an hour whose process is gone. Another process may be writing into the same cache right now, so a file of a
/// live process stays.
fn sweep_abandoned(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_string_lossy().split(".orchard-tmp.").nth(1).and_then(|rest| rest.split('.').next()?.parse::<u32>().ok());
        // Also an hour old: a cache shared between machines (NFS, a mounted volume) holds the files of
        // processes this machine's process table does not show.
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
        if old && pid.is_some_and(|pid| pid != std::process::id() && !process_alive(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether a process of that id runs (Linux's `/proc`; elsewhere every process is assumed alive).
fn process_alive(pid: u32) -> bool {
    !cfg!(target_os = "linux") || Path::new("/proc").join(pid.to_string()).exists()
}

/// What checking an object found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Ok,
    Missing,
    /// The object's bytes no longer match its name; it has been removed from the cache.
    Corrupt,
}

impl Cache {
    pub fn new(root: PathBuf, link_types: Vec<LinkType>, state: Arc<State>) -> Cache {
        Cache {
            root,
            link_types,
            state,
            no_reflink: AtomicBool::new(false),
            made_dirs: Mutex::new(HashSet::new()),
            swept: std::sync::Once::new(),
        }
    }

    /// `create_dir_all`, remembered: the first call per folder touches the filesystem.
    pub fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if self.made_dirs.lock().is_ok_and(|m| m.contains(dir)) {
            return Ok(());
        }
        fs::create_dir_all(dir).at(dir)?;
        if let Ok(mut m) = self.made_dirs.lock() {
            m.insert(dir.to_path_buf());
        }
        Ok(())
    }

    pub fn path(&self, oid: &Oid) -> PathBuf {
        self.root.join(oid.relpath())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join(".orchard-tmp")
    }

    /// A fresh temporary path inside the cache (same filesystem as the objects, so renames are atomic).
    pub fn temp_path(&self) -> Result<PathBuf> {
        let dir = self.tmp_dir();
        self.ensure_dir(&dir)?;
        self.swept.call_once(|| sweep_abandoned(&dir));
        Ok(fsutil::temp_path_for(&dir.join("object")))
    }

    /// Whether every object is in the cache: one listing per cache folder involved instead of one `stat` per
    /// object (a tracked folder of 10,000 files touches at most 256 folders).
    pub fn all_present<'a>(&self, oids: impl IntoIterator<Item = &'a Oid>) -> bool {
        let mut by_dir: std::collections::HashMap<PathBuf, Vec<std::ffi::OsString>> =
            std::collections::HashMap::new();
        for oid in oids {
            let path = self.path(oid);
            let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                return false;
            };
            by_dir.entry(dir.to_path_buf()).or_default().push(name.to_os_string());
        }
        by_dir.into_iter().all(|(dir, names)| {
            let Ok(entries) = fs::read_dir(&dir) else {
                return false;
            };
            let present: std::collections::HashSet<std::ffi::OsString> =
                entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.iter().all(|n| present.contains(n))
        })
    }

    pub fn exists(&self, oid: &Oid) -> bool {
        fs::symlink_metadata(self.path(oid)).is_ok_and(|m| m.is_file())
    }

    /// Checks that an object is present and intact. Known-good stamps in the state index make this a `stat`.
    pub fn check(&self, oid: &Oid) -> Result<Check> {
        let path = self.path(oid);
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(Check::Missing),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Check::Missing),
            Err(e) => return Err(e).at(&path),
        };
        let digest = oid.digest();
        if self.state.get(&path, oid.kind, &meta).as_deref() == Some(digest) {
            return Ok(Check::Ok);
        }
        let (actual, _) = hash::hash_file(&path, oid.kind).at(&path)?;
        if actual == digest {
            self.state.put(&path, oid.kind, &meta, digest);
            fsutil::protect(&path);
            Ok(Check::Ok)
        } else {
            // DVC deletes a corrupt object on check too: it can then be fetched again from a remote.
            let _ = fs::remove_file(&path);
            self.state.forget(&path);
            Ok(Check::Corrupt)
        }
    }

    /// Moves a finished temporary file into place under `oid`, read-only, and records its stamps.
    pub fn install(&self, tmp: &Path, oid: &Oid) -> Result<()> {
        fsutil::protect(tmp);
        let meta = fs::metadata(tmp).at(tmp)?;
        self.install_with(tmp, oid, &meta)
    }

    /// As [`Cache::install`] for a temporary file already made read-only, whose metadata the caller has
    /// (a rename keeps inode and mtime, so the stamps stay valid).
    fn install_with(&self, tmp: &Path, oid: &Oid, meta: &fs::Metadata) -> Result<()> {
        let dest = self.path(oid);
        if let Some(parent) = dest.parent() {
            self.ensure_dir(parent)?;
        }
        fs::rename(tmp, &dest).at(&dest)?;
        self.state.put(&dest, oid.kind, meta, oid.digest());
        Ok(())
    }

    /// Stores bytes already known to hash to `oid`: written aside read-only, then renamed into place.
    pub fn add_verified(&self, oid: &Oid, bytes: &[u8]) -> Result<()> {
        let tmp = self.temp_path()?;
        let written = (|| -> io::Result<fs::Metadata> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.metadata()
        })();
        match written {
            Ok(meta) => self.install_with(&tmp, oid, &meta),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e).at(&tmp)
            }
        }
    }

    /// Stores a small object from memory (a `.dir` listing), if not already present.
    pub fn add_bytes(&self, oid: &Oid, bytes: &[u8]) -> Result<()> {
        if self.exists(oid) {
            return Ok(());
        }
        self.add_verified(oid, bytes)
    }

    /// Brings a workspace file into the cache and returns its md5 and size.
    ///
    /// `known` is the md5 from the state index, if the file is unchanged since it was last hashed; then an
    /// object already in the cache costs nothing. Otherwise the file is read once: hashed and copied into
    /// the cache in the same pass (or reflinked / hardlinked when `cache.type` asks for it and the
    /// filesystem allows).
    pub fn ingest(&self, src: &Path, known: Option<&str>) -> Result<(String, u64)> {
        let meta = fs::metadata(src).at(src)?;
        if let Some(md5) = known {
            let oid = Oid::new(HashKind::Md5, md5);
            if self.exists(&oid) {
                return Ok((md5.to_string(), meta.len()));
            }
        }
        for link in &self.link_types {
            match link {
                LinkType::Reflink => {
                    if self.no_reflink.load(Ordering::Relaxed) {
                        continue;
                    }
                    // Reflink first (it costs nothing where it works), hash after: on a filesystem without
                    // reflinks the file is then read once, by the copy below, instead of twice.
                    let tmp = self.temp_path()?;
                    match reflink_copy::reflink(src, &tmp) {
                        Ok(()) => {
                            let hashed = match known {
                                Some(m) => Ok((m.to_string(), meta.len())),
                                // The clone shares the source's blocks: hashing it reads the same bytes.
                                None => hash::hash_file(&tmp, HashKind::Md5).at(src),
                            };
                            let (md5, size) = match hashed {
                                Ok(h) => h,
                                Err(e) => {
                                    let _ = fs::remove_file(&tmp);
                                    return Err(e);
                                }
                            };
                            self.install(&tmp, &Oid::new(HashKind::Md5, &md5))?;
                            return Ok((md5, size));
                        }
                        Err(_) => {
                            let _ = fs::remove_file(&tmp);
                            self.no_reflink.store(true, Ordering::Relaxed);
                        }
                    }
                }
                LinkType::Hardlink => {
                    let (md5, size) = match known {
                        Some(m) => (m.to_string(), meta.len()),
                        None => hash::hash_file(src, HashKind::Md5).at(src)?,
                    };
                    let oid = Oid::new(HashKind::Md5, &md5);
                    let tmp = self.temp_path()?;
                    if fs::hard_link(src, &tmp).is_ok() {
                        self.install(&tmp, &oid)?;
                        return Ok((md5, size));
                    }
                }
                // A symlinked workspace still needs a real object: copy now, the workspace link comes later.
                LinkType::Symlink | LinkType::Copy => return self.copy_in(src, meta.len()),
            }
        }
        self.copy_in(src, meta.len())
    }

    /// Single pass: read, hash and write a copy, then install it under the hash found.
    fn copy_in(&self, src: &Path, size: u64) -> Result<(String, u64)> {
        if size <= SMALL {
            let bytes = fs::read(src).at(src)?;
            let md5 = hash::md5_bytes(&bytes);
            let oid = Oid::new(HashKind::Md5, &md5);
            if !self.exists(&oid) {
                self.add_verified(&oid, &bytes)?;
            }
            return Ok((md5, bytes.len() as u64));
        }
        let tmp = self.temp_path()?;
        match copy_hashing(src, &tmp) {
            Ok((md5, n)) => {
                let oid = Oid::new(HashKind::Md5, &md5);
                if self.exists(&oid) {
                    let _ = fs::remove_file(&tmp);
                } else {
                    self.install(&tmp, &oid)?;
                }
                Ok((md5, n))
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Makes `dest` hold the object's bytes, with the first link type that works. The new file appears by
    /// rename, so a reader sees the old file or the new one.
    pub fn link_out(&self, oid: &Oid, dest: &Path, exec: bool) -> Result<LinkType> {
        let obj = self.path(oid);
        if let Some(parent) = dest.parent() {
            self.ensure_dir(parent)?;
        }
        let tmp = fsutil::temp_path_for(dest);
        let mode = if exec { 0o755 } else { 0o644 };
        let mut used = None;
        for link in &self.link_types {
            let ok = match link {
                LinkType::Reflink => {
                    !self.no_reflink.load(Ordering::Relaxed)
                        && match reflink_copy::reflink(&obj, &tmp) {
                            Ok(()) => {
                                use std::os::unix::fs::PermissionsExt;
                                fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                                    .at(&tmp)?;
                                true
                            }
                            Err(_) => {
                                self.no_reflink.store(true, Ordering::Relaxed);
                                false
                            }
                        }
                }
                LinkType::Hardlink => fs::hard_link(&obj, &tmp).is_ok(),
                LinkType::Symlink => std::os::unix::fs::symlink(&obj, &tmp).is_ok(),
                LinkType::Copy => {
                    copy_with_mode(&obj, &tmp, mode)?;
                    true
                }
            };
            if ok {
                used = Some(*link);
                break;
            }
        }
        let used = match used {
            Some(u) => u,
            None => {
                copy_with_mode(&obj, &tmp, mode)?;
                LinkType::Copy
            }
        };
        if let Err(e) = fs::rename(&tmp, dest) {
            // A folder where the file goes (the output changed kind): replace it.
            let replaced = fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir())
                && fs::remove_dir_all(dest).is_ok()
                && fs::rename(&tmp, dest).is_ok();
            if !replaced {
                let _ = fs::remove_file(&tmp);
                return Err(e).at(dest);
            }
        }
        if let Ok(meta) = fs::metadata(dest) {
            self.state.put(dest, HashKind::Md5, &meta, oid.digest());
        }
        Ok(used)
    }

    /// Loads a `.dir` listing from the cache.
    pub fn load_dir(&self, oid: &Oid) -> Result<Vec<DirEntry>> {
        let path = self.path(oid);
        let bytes = fs::read(&path).at(&path)?;
        hash::parse_dir_listing(&bytes).map_err(|reason| {
            DataError::Invalid(format!(
                "the directory object {} in the cache is damaged: {reason}",
                path.display()
            ))
        })
    }

    /// Every object in the cache (DVC 3 and legacy locations), for `gc`.
    pub fn all_objects(&self) -> Vec<(Oid, PathBuf)> {
        let mut out = Vec::new();
        let mut scan = |base: PathBuf, kind: HashKind| {
            let Ok(prefixes) = fs::read_dir(&base) else {
                return;
            };
            for p in prefixes.flatten() {
                let prefix = p.file_name().to_string_lossy().into_owned();
                if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                let Ok(files) = fs::read_dir(p.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    let value = format!("{prefix}{}", f.file_name().to_string_lossy());
                    if Oid::is_well_formed(&value) {
                        out.push((Oid::new(kind, value), f.path()));
                    }
                }
            }
        };
        scan(self.root.join("files/md5"), HashKind::Md5);
        scan(self.root.clone(), HashKind::LegacyMd5Dos2Unix);
        out
    }

    pub fn state(&self) -> &State {
        &self.state
    }
}

/// Copies `src` to a new file `dest` created with `mode` (in-kernel copy where the OS offers one).
pub(crate) fn copy_with_mode(src: &Path, dest: &Path, mode: u32) -> Result<()> {
    let mut input = fs::File::open(src).at(src)?;
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .at(dest)?;
    if let Err(e) = io::copy(&mut input, &mut output) {
        drop(output);
        let _ = fs::remove_file(dest);
        return Err(e).at(dest);
    }
    Ok(())
}

/// Copies a large file while hashing it: this thread reads and hashes, a second one writes, so the md5 and
/// the disk write overlap (the whole add costs about one md5 pass of the file).
pub(crate) fn copy_hashing(src: &Path, dest: &Path) -> Result<(String, u64)> {
    let mut input = fs::File::open(src).at(src)?;
    let mut output = fs::File::create(dest).at(dest)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let writer = std::thread::spawn(move || -> io::Result<()> {
        for chunk in rx {
            output.write_all(&chunk)?;
        }
        output.flush()
    });
    let mut hasher = Md5::new();
    let mut total = 0u64;
    let read_result = (|| -> io::Result<()> {
        loop {
            let mut buf = vec![0u8; hash::CHUNK * 4];
            let mut filled = 0;
            while filled < buf.len() {
                match input.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                return Ok(());
            }
            buf.truncate(filled);
            hasher.update(&buf);
            total += filled as u64;
            if tx.send(buf).is_err() {
                return Ok(()); // the writer failed; its error is reported below
            }
        }
    })();
    drop(tx);
    let write_result = writer
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("writer thread panicked")));
    read_result.at(src)?;
    write_result.at(dest)?;
    Ok((hex::encode(hasher.finalize()), total))
}
