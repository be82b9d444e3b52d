//! Remotes: `push`, `fetch`, `pull` and `status --cloud` over `orchard-blob` (a local folder or any
//! S3-compatible store), with DVC's remote layout (`<url>/files/md5/ab/cdef…`, legacy `<url>/ab/cdef…`).
//!
//! Only missing objects move: what the remote has is learned from one paginated listing (or, for a handful
//! of objects, from concurrent existence checks), never from one request per object of a large remote.
//! Transfers run `jobs` at a time. Every downloaded object is hashed on the way in and enters the cache only
//! if it matches its name; uploads and downloads land by rename, so an interrupted run is simply rerun.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use orchard_blob::{BlobError, BlobStore, S3Options};
use tokio::io::AsyncWriteExt;

use crate::cache::Cache;
use crate::checkout::{self, CheckoutReport};
use crate::dvcfile::DvcFile;
use crate::error::{DataError, Result};
use crate::hash::{self, HashKind, Oid};
use crate::progress::Progress;
use crate::repo::{Repo, Tracked};

/// Below this many objects, asking about each is cheaper than listing the remote.
const EXISTS_CHECK_LIMIT: usize = 64;
/// Objects up to this size are uploaded in one request; larger ones in parts.
const SINGLE_PUT_LIMIT: u64 = 16 << 20;

pub struct Remote {
    pub name: String,
    pub store: BlobStore,
    pub jobs: usize,
}

impl Remote {
    /// Opens the named remote, or the default one (`core.remote`).
    pub fn open(repo: &Repo, name: Option<&str>) -> Result<Remote> {
        let name = match name.or(repo.config.default_remote()) {
            Some(n) => n.to_string(),
            None => return Err(DataError::NoRemote(repo.root.display().to_string())),
        };
        let rc = repo
            .config
            .remote(&name)
            .ok_or_else(|| DataError::NoSuchRemote(name.clone()))?;
        let opt = |k: &str| rc.options.get(k).cloned();
        let s3 = S3Options {
            endpoint: opt("endpointurl"),
            region: opt("region"),
            access_key_id: opt("access_key_id"),
            secret_access_key: opt("secret_access_key"),
            session_token: opt("session_token"),
        };
        let url = local_url(&repo.dvc_dir, &rc.url);
        let store = BlobStore::open_with(&url, &s3).map_err(|source| DataError::Remote {
            remote: name.clone(),
            source,
        })?;
        let jobs = opt("jobs").and_then(|j| j.parse().ok()).unwrap_or_else(default_jobs);
        Ok(Remote { name, store, jobs })
    }

    fn err(&self, source: BlobError) -> DataError {
        DataError::Remote {
            remote: self.name.clone(),
            source,
        }
    }

    /// Which of `oids` the remote already has.
    pub async fn existing(&self, oids: &[Oid]) -> Result<HashSet<Oid>> {
        let mut found = HashSet::new();
        let (modern, legacy): (Vec<&Oid>, Vec<&Oid>) =
            oids.iter().partition(|o| o.kind == HashKind::Md5);
        if modern.len() > EXISTS_CHECK_LIMIT {
            let listed: HashSet<String> = self
                .store
                .list_recursive("files/md5")
                .await
                .map_err(|e| self.err(e))?
                .into_iter()
                .filter_map(|p| {
                    let rest = p.strip_prefix("files/md5/")?;
                    let (head, tail) = rest.split_once('/')?;
                    Some(format!("{head}{tail}"))
                })
                .collect();
            found.extend(modern.iter().filter(|o| listed.contains(&o.value)).map(|o| (*o).clone()));
            self.head_each(&legacy, &mut found).await?;
        } else {
            let all: Vec<&Oid> = modern.into_iter().chain(legacy).collect();
            self.head_each(&all, &mut found).await?;
        }
        Ok(found)
    }

    async fn head_each(&self, oids: &[&Oid], found: &mut HashSet<Oid>) -> Result<()> {
        let results: Vec<(Oid, bool)> = futures::stream::iter(oids.iter().map(|o| async move {
            let present = self.store.head(&o.relpath()).await.map_err(|e| self.err(e))?;
            Ok::<_, DataError>(((*o).clone(), present.is_some()))
        }))
        .buffer_unordered(self.jobs)
        .try_collect()
        .await?;
        found.extend(results.into_iter().filter(|(_, p)| *p).map(|(o, _)| o));
        Ok(())
    }

    async fn upload(&self, cache: &Cache, oid: &Oid) -> std::result::Result<u64, String> {
        let path = cache.path(oid);
        if let Some(dest) = self.store.local_file(&oid.relpath()) {
            // A local remote: one in-kernel copy aside, then a rename (no async file I/O round trips).
            return tokio::task::block_in_place(|| upload_local(&path, &dest));
        }
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if size <= SINGLE_PUT_LIMIT {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            self.store
                .put(&oid.relpath(), bytes.into())
                .await
                .map_err(|e| e.to_string())?;
        } else {
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 8 << 20).boxed();
            self.store
                .put_stream(&oid.relpath(), stream)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(size)
    }

    /// Downloads one object into the cache, verifying it against its id on the way.
    async fn download(&self, cache: &Cache, oid: &Oid) -> std::result::Result<u64, String> {
        if oid.kind == HashKind::Md5 {
            if let Some(src) = self.store.local_file(&oid.relpath()) {
                return tokio::task::block_in_place(|| download_local(cache, oid, &src));
            }
        }
        let (size, mut stream) = self
            .store
            .get(&oid.relpath())
            .await
            .map_err(|e| e.to_string())?;
        if size <= SINGLE_PUT_LIMIT && oid.kind == HashKind::Md5 {
            // Small objects: gathered in memory, verified, then written in one go.
            let mut bytes = Vec::with_capacity(size as usize);
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            }
            let actual = hash::md5_bytes(&bytes);
            if actual != oid.digest() {
                return Err(corrupted(oid, &actual));
            }
            tokio::task::block_in_place(|| cache.add_verified(oid, &bytes))
                .map_err(|e| e.to_string())?;
            return Ok(bytes.len() as u64);
        }
        let tmp = cache.temp_path().map_err(|e| e.to_string())?;
        let result = async {
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            let mut hasher = Md5::new();
            let mut total = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                hasher.update(&chunk);
                total += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
            }
            file.flush().await.map_err(|e| e.to_string())?;
            drop(file);
            let actual = match oid.kind {
                HashKind::Md5 => hex::encode(hasher.finalize()),
                HashKind::LegacyMd5Dos2Unix => {
                    hash::hash_file(&tmp, oid.kind).map_err(|e| e.to_string())?.0
                }
            };
            if actual != oid.digest() {
                return Err(corrupted(oid, &actual));
            }
            cache.install(&tmp, oid).map_err(|e| e.to_string())?;
            Ok(total)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Uploads one cache object to a local remote: copied next to its final name, then renamed into place.
fn upload_local(src: &Path, dest: &Path) -> std::result::Result<u64, String> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = crate::fsutil::temp_path_for(dest);
    let result = crate::cache::copy_with_mode(src, &tmp, 0o644)
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&tmp, dest).map_err(|e| format!("{}: {e}", dest.display())));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::metadata(dest)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", dest.display()))
}

/// Downloads one object from a local remote, verifying it: small objects are read and hashed in memory,
/// large ones copied and hashed in one pass (the copy and the md5 overlap).
fn download_local(cache: &Cache, oid: &Oid, src: &Path) -> std::result::Result<u64, String> {
    let size = std::fs::metadata(src)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => orchard_blob::BlobError::NotFound(oid.relpath()).to_string(),
            _ => format!("{}: {e}", src.display()),
        })?
        .len();
    if size <= SINGLE_PUT_LIMIT {
        let bytes = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let actual = hash::md5_bytes(&bytes);
        if actual != oid.digest() {
            return Err(corrupted(oid, &actual));
        }
        cache.add_verified(oid, &bytes).map_err(|e| e.to_string())?;
        return Ok(bytes.len() as u64);
    }
    let tmp = cache.temp_path().map_err(|e| e.to_string())?;
    let result = crate::cache::copy_hashing(src, &tmp)
        .map_err(|e| e.to_string())
        .and_then(|(actual, n)| {
            if actual != oid.digest() {
                return Err(corrupted(oid, &actual));
            }
            cache.install(&tmp, oid).map_err(|e| e.to_string())?;
            Ok(n)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn corrupted(oid: &Oid, actual: &str) -> String {
    format!(
        "the remote object {} is corrupted (its content hashes to {actual}); it was not used",
        oid.relpath()
    )
}

fn default_jobs() -> usize {
    4 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// A local remote's URL: relative paths in `.dvc/config` are relative to the `.dvc` folder, as in DVC.
fn local_url(dvc_dir: &Path, url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    let p = Path::new(url);
    if p.is_absolute() {
        url.to_string()
    } else {
        crate::fsutil::normalize(&dvc_dir.join(p)).display().to_string()
    }
}

/// The summary DVC prints: `3 files pushed`, `1 file fetched and 2 files added`, …
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TransferReport {
    pub transferred: u64,
    pub bytes: u64,
    /// Objects neither in the cache nor on the remote (`md5: <hash>` like DVC's warning).
    pub missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout: Option<CheckoutReport>,
}

/// The objects behind a set of outputs.
struct Wanted {
    files: Vec<(Oid, String)>,
    dirs: Vec<(Oid, String, Vec<Oid>)>,
    /// Directories whose listing is not in the cache.
    unlisted: Vec<(Oid, String)>,
}

fn group_by_remote<'a>(
    files: &[DvcFile],
    selected: &'a [Tracked],
    explicit: Option<&str>,
    for_push: bool,
) -> BTreeMap<Option<String>, Vec<&'a Tracked>> {
    let mut groups: BTreeMap<Option<String>, Vec<&Tracked>> = BTreeMap::new();
    for t in selected {
        let out = &files[t.file].outs[t.out];
        if out.oid.is_none() || !out.cache || (for_push && !out.push) {
            continue;
        }
        let remote = explicit.map(str::to_string).or_else(|| out.remote.clone());
        groups.entry(remote).or_default().push(t);
    }
    groups
}

fn wanted(repo: &Repo, files: &[DvcFile], outs: &[&Tracked]) -> Wanted {
    let mut w = Wanted {
        files: Vec::new(),
        dirs: Vec::new(),
        unlisted: Vec::new(),
    };
    for t in outs {
        let Some(oid) = &files[t.file].outs[t.out].oid else {
            continue;
        };
        if !oid.is_dir() {
            w.files.push((oid.clone(), t.rel.clone()));
            continue;
        }
        match repo.cache.load_dir(oid) {
            Ok(entries) => {
                let children = entries
                    .iter()
                    .map(|e| {
                        let child = Oid::new(oid.kind, &e.md5);
                        w.files.push((child.clone(), format!("{}/{}", t.rel, e.relpath)));
                        child
                    })
                    .collect();
                w.dirs.push((oid.clone(), t.rel.clone(), children));
            }
            Err(_) => w.unlisted.push((oid.clone(), t.rel.clone())),
        }
    }
    w
}

/// What a push, fetch or pull moves and how: the targets (all tracked data when empty), the remote (else
/// `core.remote`, or each output's own), concurrent transfers (else 4 × cores or the remote's `jobs`).
#[derive(Clone, Debug, Default)]
pub struct Transfer<'a> {
    pub targets: &'a [PathBuf],
    pub remote: Option<&'a str>,
    pub jobs: Option<usize>,
    pub show_progress: bool,
}

pub async fn push(repo: &Repo, cwd: &Path, t: &Transfer<'_>) -> Result<TransferReport> {
    let (remote, jobs, show_progress) = (t.remote, t.jobs, t.show_progress);
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, t.targets)?;
    let mut done = Outcome::default();
    for (name, outs) in group_by_remote(&files, &selected, remote, true) {
        let mut remote = Remote::open(repo, name.as_deref())?;
        if let Some(j) = jobs {
            remote.jobs = j.max(1);
        }
        let w = wanted(repo, &files, &outs);
        let mut all: Vec<Oid> = w.files.iter().map(|(o, _)| o.clone()).collect();
        all.extend(w.dirs.iter().map(|(o, _, _)| o.clone()));
        all.extend(w.unlisted.iter().map(|(o, _)| o.clone()));
        all.sort();
        all.dedup();
        let present = remote.existing(&all).await?;
        for (oid, _) in &w.unlisted {
            if !present.contains(oid) {
                done.report.missing.push(format!("md5: {}", oid.value));
            }
        }
        // Files first; a directory's listing goes up only once all its files are there, so a remote never
        // advertises a directory it cannot deliver.
        let mut to_send: Vec<Oid> = Vec::new();
        let mut seen = HashSet::new();
        for (oid, _) in &w.files {
            if present.contains(oid) || !seen.insert(oid.clone()) {
                continue;
            }
            if repo.cache.exists(oid) {
                to_send.push(oid.clone());
            } else {
                done.report.missing.push(format!("md5: {}", oid.value));
            }
        }
        let sent = send(repo, &remote, &to_send, show_progress, &mut done).await;
        let mut dirs_to_send = Vec::new();
        for (oid, _, children) in &w.dirs {
            if present.contains(oid) {
                continue;
            }
            if children.iter().all(|c| present.contains(c) || sent.contains(c)) {
                dirs_to_send.push(oid.clone());
            }
        }
        send(repo, &remote, &dirs_to_send, false, &mut done).await;
    }
    finish(repo, "upload", done.failures)?;
    Ok(done.report)
}

/// The end of a transfer: the state index closed, and the objects that could not be moved, if any, one error
/// that names each (DVC fails the whole command, after moving all it could).
fn finish(repo: &Repo, action: &'static str, failures: Vec<String>) -> Result<()> {
    repo.close();
    match failures.is_empty() {
        true => Ok(()),
        false => Err(DataError::TransferFailed { count: failures.len(), action, details: failures }),
    }
}

/// What a transfer did so far: the report, and the objects that could not be moved.
#[derive(Default)]
struct Outcome {
    report: TransferReport,
    failures: Vec<String>,
}

async fn send(repo: &Repo, remote: &Remote, oids: &[Oid], show_progress: bool, done: &mut Outcome) -> HashSet<Oid> {
    let progress = Progress::new("Pushing", oids.len() as u64, show_progress);
    let results = if remote.store.is_local() {
        // A local folder: the whole batch on the thread pool, each object copied with the OS.
        run_local(oids, &progress, |oid| match remote.store.local_file(&oid.relpath()) {
            Some(dest) => upload_local(&repo.cache.path(oid), &dest),
            None => Err(format!("invalid object path {}", oid.relpath())),
        })
    } else {
        run_all(oids, remote.jobs, &progress, |oid| remote.upload(&repo.cache, oid)).await
    };
    done.tally(results)
}

/// Runs `op` on each object, `jobs` at a time, advancing the progress bar as each one finishes.
async fn run_all<'a, F, Fut>(
    oids: &'a [Oid],
    jobs: usize,
    progress: &Progress,
    op: F,
) -> Vec<(Oid, std::result::Result<u64, String>)>
where
    F: Fn(&'a Oid) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<u64, String>>,
{
    let results = futures::stream::iter(oids.iter().map(|oid| {
        let fut = op(oid);
        async move {
            let r = fut.await;
            if let Ok(n) = r {
                progress.inc(n);
            }
            (oid.clone(), r)
        }
    }))
    .buffer_unordered(jobs)
    .collect()
    .await;
    progress.finish();
    results
}

/// Runs a blocking transfer of every object on the thread pool (one hand-over from the async runtime for the
/// whole batch, not one per object): for local-folder remotes, where each transfer is a few system calls.
fn run_local<F>(oids: &[Oid], progress: &Progress, op: F) -> Vec<(Oid, std::result::Result<u64, String>)>
where
    F: Fn(&Oid) -> std::result::Result<u64, String> + Sync,
{
    use rayon::prelude::*;
    let results = tokio::task::block_in_place(|| {
        oids.par_iter()
            .map(|oid| {
                let r = op(oid);
                if let Ok(n) = r {
                    progress.inc(n);
                }
                (oid.clone(), r)
            })
            .collect()
    });
    progress.finish();
    results
}

impl Outcome {
    /// Adds the objects' outcomes: successes counted, "not found" as missing, other errors as failures. Returns
    /// the objects moved.
    fn tally(&mut self, results: Vec<(Oid, std::result::Result<u64, String>)>) -> HashSet<Oid> {
        let mut ok = HashSet::new();
        for (oid, r) in results {
            match r {
                Ok(n) => {
                    self.report.transferred += 1;
                    self.report.bytes += n;
                    ok.insert(oid);
                }
                Err(e) if e.starts_with("not found") => self.report.missing.push(format!("md5: {}", oid.value)),
                Err(e) => self.failures.push(format!("md5 {}: {e}", oid.value)),
            }
        }
        ok
    }
}

pub async fn fetch(repo: &Repo, cwd: &Path, t: &Transfer<'_>) -> Result<TransferReport> {
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, t.targets)?;
    let done = fetch_outputs(repo, &files, &selected, t).await?;
    finish(repo, "download", done.failures)?;
    Ok(done.report)
}

async fn fetch_outputs(
    repo: &Repo,
    files: &[DvcFile],
    selected: &[Tracked],
    t: &Transfer<'_>,
) -> Result<Outcome> {
    let (remote, jobs, show_progress) = (t.remote, t.jobs, t.show_progress);
    let mut done = Outcome::default();
    for (name, outs) in group_by_remote(files, selected, remote, false) {
        let mut remote = Remote::open(repo, name.as_deref())?;
        if let Some(j) = jobs {
            remote.jobs = j.max(1);
        }
        // Directory listings first: they say which files to fetch.
        let mut listings: Vec<Oid> = outs
            .iter()
            .filter_map(|t| files[t.file].outs[t.out].oid.clone())
            .filter(|o| o.is_dir() && !repo.cache.exists(o))
            .collect();
        listings.sort();
        listings.dedup();
        receive(repo, &remote, &listings, false, &mut done).await;
        let w = wanted(repo, files, &outs);
        let mut need: Vec<Oid> = w
            .files
            .iter()
            .map(|(o, _)| o.clone())
            .filter(|o| !repo.cache.exists(o))
            .collect();
        need.sort();
        need.dedup();
        receive(repo, &remote, &need, show_progress, &mut done).await;
    }
    Ok(done)
}

async fn receive(repo: &Repo, remote: &Remote, oids: &[Oid], show_progress: bool, done: &mut Outcome) {
    let progress = Progress::new("Fetching", oids.len() as u64, show_progress);
    let results = if remote.store.is_local() && oids.iter().all(|o| o.kind == HashKind::Md5) {
        run_local(oids, &progress, |oid| match remote.store.local_file(&oid.relpath()) {
            Some(src) => download_local(&repo.cache, oid, &src),
            None => Err(format!("invalid object path {}", oid.relpath())),
        })
    } else {
        run_all(oids, remote.jobs, &progress, |oid| remote.download(&repo.cache, oid)).await
    };
    done.tally(results);
}

/// `pull`: fetch, then check out. Outputs whose objects could not be had are reported, the rest are
/// checked out.
pub async fn pull(repo: &Repo, cwd: &Path, t: &Transfer<'_>, force: bool, allow_missing: bool) -> Result<TransferReport> {
    let show_progress = t.show_progress;
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, t.targets)?;
    let Outcome { mut report, failures } = fetch_outputs(repo, &files, &selected, t).await?;
    let checkout = checkout::checkout_outputs(
        repo,
        &files,
        &selected,
        force,
        false,
        allow_missing || !failures.is_empty(),
        show_progress,
    )?;
    report.checkout = Some(checkout);
    finish(repo, "download", failures)?;
    if let Some(c) = &report.checkout {
        if !c.failed.is_empty() && !allow_missing {
            return Err(DataError::CheckoutFailed(c.failed.clone()));
        }
    }
    Ok(report)
}

/// `status --cloud`: per object name, `new` (only in the cache), `deleted` (only on the remote) or
/// `missing` (in neither); objects in both are not listed.
pub async fn cloud_status(
    repo: &Repo,
    cwd: &Path,
    targets: &[PathBuf],
    remote: Option<&str>,
) -> Result<(String, BTreeMap<String, &'static str>)> {
    let files = repo.dvc_files()?;
    let selected = repo.select(&files, cwd, targets)?;
    let mut result = BTreeMap::new();
    let mut remote_name = String::new();
    let groups = group_by_remote(&files, &selected, remote, true);
    if groups.is_empty() {
        // Still resolve the remote, so a missing one is reported as such.
        remote_name = Remote::open(repo, remote)?.name;
    }
    for (name, outs) in groups {
        let remote = Remote::open(repo, name.as_deref())?;
        remote_name = remote.name.clone();
        let w = wanted(repo, &files, &outs);
        let mut named: Vec<(Oid, String)> = w.files.clone();
        named.extend(w.dirs.iter().map(|(o, n, _)| (o.clone(), n.clone())));
        named.extend(w.unlisted.iter().cloned());
        let oids: Vec<Oid> = named.iter().map(|(o, _)| o.clone()).collect();
        let present = remote.existing(&oids).await?;
        for (oid, name) in named {
            let local = repo.cache.exists(&oid);
            let there = present.contains(&oid);
            let state = match (local, there) {
                (true, true) => continue,
                (true, false) => "new",
                (false, true) => "deleted",
                (false, false) => "missing",
            };
            result.insert(name, state);
        }
    }
    repo.close();
    Ok((remote_name, result))
}

/// Every object below the remote (for `gc --cloud`).
pub async fn remote_objects(remote: &Remote) -> Result<Vec<Oid>> {
    let paths = remote
        .store
        .list_recursive("")
        .await
        .map_err(|e| remote.err(e))?;
    Ok(paths
        .into_iter()
        .filter_map(|p| {
            if let Some(rest) = p.strip_prefix("files/md5/") {
                let (h, t) = rest.split_once('/')?;
                let v = format!("{h}{t}");
                Oid::is_well_formed(&v).then(|| Oid::new(HashKind::Md5, v))
            } else {
                let (h, t) = p.split_once('/')?;
                let v = format!("{h}{t}");
                (h.len() == 2 && Oid::is_well_formed(&v))
                    .then(|| Oid::new(HashKind::LegacyMd5Dos2Unix, v))
            }
        })
        .collect())
}

pub async fn delete_remote_object(remote: &Remote, oid: &Oid) -> Result<()> {
    remote
        .store
        .delete_object(&oid.relpath())
        .await
        .map_err(|e| remote.err(e))
}
