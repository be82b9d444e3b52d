//! Writing `dvc.lock` as stages settle: entries kept in plan order (so the file is byte for byte what `dvc`
//! writes), rewritten at most every 100 ms, under a file lock shared with the workers beside this process,
//! with the run-cache entries and `.gitignore` lines that go with them.

use std::path::Path;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use orchard_data::fsutil;

use crate::control::say;
use crate::error::{PipelineError, Result};
use crate::lock::Lock;
use crate::project::Project;
use crate::spec::Stage;

pub(crate) struct CloseRunCache<'a>(pub(crate) &'a Mutex<Shared>);

impl Drop for CloseRunCache<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).run_cache = None;
    }
}

/// `dvc.lock` as this process last read or wrote it, and the file's size and mtime then: when they differ,
/// another process (a worker) wrote it since, and its entries are read back before ours is added.
pub(crate) struct Shared {
    pub(crate) lock: Lock,
    pub(crate) stamp: Option<(u64, std::time::SystemTime)>,
    /// Entries' text as last written (see [`Lock::to_yaml_reusing`]).
    pub(crate) rendered: std::collections::HashMap<String, (crate::lock::LockEntry, String)>,
    /// Stages whose entries are not in the file yet.
    pub(crate) unwritten: Vec<String>,
    /// Each planned stage's place in the plan, and the stages whose entries this run added to the lock (with
    /// their places): new entries are kept in plan order.
    pub(crate) rank: std::collections::HashMap<String, usize>,
    pub(crate) added: std::collections::HashMap<String, usize>,
    /// Run-cache entries to write (path, text) on a thread of their own, off the stages' path: each one is a
    /// new folder and file, which cost a quick stage as much as all its other bookkeeping on ext4. None:
    /// written at once.
    pub(crate) run_cache: Option<mpsc::Sender<(std::path::PathBuf, String)>>,
    /// Outputs to add to their folder's .gitignore, written just before the entries that name them (each
    /// .gitignore rewritten once per batch rather than once per stage).
    pub(crate) ignore: Vec<std::path::PathBuf>,
    /// At most one write per this long (the rest at the end of the run); None: every entry at once.
    pub(crate) throttle: Option<Duration>,
    pub(crate) next_write: Option<Instant>,
}

/// How often a long `repro` rewrites dvc.lock: rewriting the whole file after each of 1,000 quick stages
/// was a measurable part of the per-stage cost. Should the process die in between, the stages not yet in
/// the file are found changed next time and run again (or come back from the run cache, for those whose
/// entries the run-cache writer had saved).
pub(crate) const LOCK_WRITE_EVERY: Duration = Duration::from_millis(100);

impl Shared {
    pub(crate) fn read(project: &Project, throttle: Option<Duration>) -> Result<Shared> {
        Ok(Shared {
            lock: project.lock()?,
            stamp: lock_stamp(project),
            rendered: Default::default(),
            unwritten: Vec::new(),
            ignore: Vec::new(),
            rank: Default::default(),
            added: Default::default(),
            run_cache: None,
            throttle,
            next_write: None,
        })
    }
}

impl Shared {
    /// Puts a stage's entry in the lock: in its place when it has one; otherwise after the others, in plan
    /// order among the ones this run adds (the order `dvc`, which runs one stage at a time, writes them in),
    /// though stages may settle in another order.
    pub(crate) fn insert(&mut self, name: &str, entry: crate::lock::LockEntry) {
        if let Some(e) = self.lock.stages.get_mut(name) {
            *e = entry;
            return;
        }
        let mut at = self.lock.stages.len();
        let mine = self.rank.get(name).copied();
        while let (Some(mine), Some((prev, _))) = (mine, at.checked_sub(1).and_then(|k| self.lock.stages.get_index(k))) {
            match self.added.get(prev) {
                Some(&theirs) if theirs > mine => at -= 1,
                _ => break,
            }
        }
        self.lock.stages.shift_insert(at, name.to_string(), entry);
        if let Some(mine) = mine {
            self.added.insert(name.to_string(), mine);
        }
    }
}

pub(crate) fn lock_stamp(project: &Project) -> Option<(u64, std::time::SystemTime)> {
    let m = std::fs::metadata(project.root.join(crate::lock::FILE_NAME)).ok()?;
    Some((m.len(), m.modified().ok()?))
}

pub(crate) fn save_entry(project: &Project, shared: &Mutex<Shared>, stage: &Stage, entry: crate::lock::LockEntry, to_stderr: bool) -> Result<()> {
    let mut guard = shared.lock().expect("lock poisoned");
    let s = &mut *guard;
    if s.lock.stages.get(&stage.name) == Some(&entry) {
        return Ok(());
    }
    if !project.root.join(crate::lock::FILE_NAME).exists() && s.unwritten.is_empty() {
        say(to_stderr, &format!("Generating lock file '{}'", crate::lock::FILE_NAME));
    }
    s.insert(&stage.name, entry);
    if !s.unwritten.contains(&stage.name) {
        s.unwritten.push(stage.name.clone());
    }
    say(to_stderr, &format!("Updating lock file '{}'\n", crate::lock::FILE_NAME));
    if s.next_write.is_some_and(|t| Instant::now() < t) {
        return Ok(());
    }
    write_lock(project, s)
}

/// Writes dvc.lock with the entries not yet written. Other processes (workers) update it too: one at a time,
/// under a file lock, each adding its entries to what is there.
pub(crate) fn write_lock(project: &Project, s: &mut Shared) -> Result<()> {
    if s.unwritten.is_empty() && s.ignore.is_empty() {
        return Ok(());
    }
    // The same lock covers the .gitignore files, which workers side by side may share.
    let _exclusive = FileLock::acquire(&project.root.join(".dvc").join("tmp").join("orchard-dvc-lock"))?;
    if !s.ignore.is_empty() {
        // An unreadable .gitignore leaves outputs visible to git; it must not keep dvc.lock from being written.
        if let Err(e) = project.repo.gitignore_all(&s.ignore) {
            eprintln!("WARNING: could not add outputs to .gitignore: {e}");
        }
        s.ignore.clear();
    }
    if s.unwritten.is_empty() {
        return Ok(());
    }
    // Workers (no throttle) always read it back: size and mtime can miss a same-size rewrite on a
    // filesystem with coarse timestamps.
    if s.throttle.is_none() || lock_stamp(project) != s.stamp {
        let mut mine = std::mem::replace(&mut s.lock, project.lock()?);
        for name in std::mem::take(&mut s.unwritten) {
            if let Some(e) = mine.stages.shift_remove(&name) {
                s.insert(&name, e);
            }
            s.unwritten.push(name);
        }
    }
    let text = s.lock.to_yaml_reusing(&mut s.rendered);
    fsutil::write_atomic(&project.root.join(crate::lock::FILE_NAME), text.as_bytes())?;
    s.stamp = lock_stamp(project);
    s.unwritten.clear();
    s.next_write = s.throttle.map(|d| Instant::now() + d);
    Ok(())
}

/// An exclusive `flock` on a file, released when dropped (or when the process dies, so a killed worker
/// never leaves it held).
pub(crate) struct FileLock {
    pub(crate) _held: std::fs::File,
}

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Result<FileLock> {
        use std::os::fd::AsRawFd;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
        }
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| PipelineError::io(path, e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared with the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(PipelineError::io(path, std::io::Error::last_os_error()));
        }
        Ok(FileLock { _held: f })
    }
}
