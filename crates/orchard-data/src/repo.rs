//! A DVC repository on disk: finding it, creating it (`init`), its config, cache and state, the `.dvc`
//! files it holds, and the `.gitignore` entries DVC keeps for tracked data.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::Cache;
use crate::config::Config;
use crate::dvcfile::{DvcFile, Out};
use crate::error::{DataError, IoContext, Result};
use crate::fsutil;
use crate::state::State;

pub const DVCIGNORE_TEXT: &str = "# Add patterns of files dvc should ignore, which could improve\n# the performance. Learn more at\n# https://dvc.org/doc/user-guide/dvcignore\n";

pub struct Repo {
    pub root: PathBuf,
    pub dvc_dir: PathBuf,
    pub config: Config,
    pub cache: Cache,
    pub state: Arc<State>,
}

/// One output of one `.dvc` file, with where it is.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub file: usize,
    pub out: usize,
    /// Absolute path of the data.
    pub abs: PathBuf,
    /// Path relative to the repository root, `/`-separated (how messages name it).
    pub rel: String,
}

impl Repo {
    /// The repository containing `start` (the nearest ancestor holding a `.dvc` folder).
    pub fn find(start: &Path) -> Result<Repo> {
        let start = fs::canonicalize(start).at(start)?;
        let mut cur = Some(start.as_path());
        while let Some(dir) = cur {
            if dir.join(".dvc").is_dir() {
                return Repo::open(dir);
            }
            cur = dir.parent();
        }
        Err(DataError::NotARepo(start))
    }

    pub fn open(root: &Path) -> Result<Repo> {
        let root = root.to_path_buf();
        let dvc_dir = root.join(".dvc");
        let config = Config::load(&dvc_dir)?;
        let link_types = config.link_types()?;
        let state = Arc::new(State::load(dvc_dir.join("tmp").join("orchard-state")));
        let cache = Cache::new(config.cache_dir(), link_types, state.clone());
        Ok(Repo {
            root,
            dvc_dir,
            config,
            cache,
            state,
        })
    }

    /// `dvc init`: `.dvc/` with an empty config and its `.gitignore`, and a `.dvcignore`. Needs a git
    /// repository unless `no_scm`.
    pub fn init(root: &Path, no_scm: bool, force: bool) -> Result<Repo> {
        let root = fs::canonicalize(root).at(root)?;
        if !no_scm && !is_git_repo(&root) {
            return Err(DataError::NoScm(root));
        }
        let dvc_dir = root.join(".dvc");
        if dvc_dir.exists() {
            if !force {
                return Err(DataError::AlreadyInitialized(PathBuf::from(".dvc")));
            }
            fs::remove_dir_all(&dvc_dir).at(&dvc_dir)?;
        }
        fs::create_dir_all(dvc_dir.join("tmp")).at(&dvc_dir)?;
        let config = if no_scm {
            "[core]\n    no_scm = True\n"
        } else {
            ""
        };
        fsutil::write_atomic(&dvc_dir.join("config"), config.as_bytes())?;
        fsutil::write_atomic(
            &dvc_dir.join(".gitignore"),
            b"/config.local\n/tmp\n/cache\n",
        )?;
        let ignore = root.join(".dvcignore");
        if !ignore.exists() {
            fsutil::write_atomic(&ignore, DVCIGNORE_TEXT.as_bytes())?;
        }
        let repo = Repo::open(&root)?;
        if !no_scm {
            // DVC stages its own files on init, whatever core.autostage says.
            repo.git_add(&[
                dvc_dir.join("config"),
                dvc_dir.join(".gitignore"),
                ignore,
            ])?;
        }
        Ok(repo)
    }

    /// `core.autostage`: `git add` the files a command changed.
    pub fn autostage(&self) -> bool {
        self.uses_scm()
            && self
                .config
                .get("core", "autostage")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Stages files in git.
    pub fn git_add(&self, paths: &[PathBuf]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let out = std::process::Command::new("git")
            .arg("add")
            .arg("--")
            .args(paths)
            .current_dir(&self.root)
            .output()
            .map_err(|e| DataError::Invalid(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(DataError::Invalid(format!(
                "git add failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    pub fn uses_scm(&self) -> bool {
        self.config.get("core", "no_scm").is_none_or(|v| !v.eq_ignore_ascii_case("true"))
    }

    /// A user-given path (relative to `cwd`) as an absolute path inside the repository.
    pub fn resolve(&self, cwd: &Path, target: &Path) -> Result<PathBuf> {
        let abs = fsutil::normalize(&cwd.join(target));
        // Resolve symlinks in the folders above (not the target itself), so /tmp vs /private/tmp style
        // aliases still count as inside.
        let abs = match (abs.parent(), abs.file_name()) {
            (Some(parent), Some(name)) => match fs::canonicalize(parent) {
                Ok(p) => p.join(name),
                Err(_) => abs.clone(),
            },
            _ => abs.clone(),
        };
        if !abs.starts_with(&self.root) || abs == self.root {
            return Err(DataError::OutsideRepo(target.display().to_string()));
        }
        if abs.starts_with(&self.dvc_dir) || abs.starts_with(self.root.join(".git")) {
            return Err(DataError::OutsideRepo(target.display().to_string()));
        }
        Ok(abs)
    }

    pub fn rel(&self, abs: &Path) -> String {
        fsutil::posix(abs.strip_prefix(&self.root).unwrap_or(abs))
    }

    /// Every `.dvc` file in the repository (outside `.git`, `.dvc` and `.dvcignore`d folders).
    pub fn dvc_files(&self) -> Result<Vec<DvcFile>> {
        let mut builder = ignore::WalkBuilder::new(&self.root);
        builder
            .standard_filters(false)
            .hidden(false)
            .add_custom_ignore_filename(".dvcignore")
            .filter_entry(|e| {
                !(e.file_type().is_some_and(|t| t.is_dir())
                    && matches!(e.file_name().to_str(), Some(".git" | ".dvc" | ".hg")))
            });
        let mut paths = Vec::new();
        for entry in builder.build() {
            let entry = entry.map_err(|e| DataError::Invalid(e.to_string()))?;
            if entry.file_type().is_some_and(|t| t.is_file())
                && entry.path().extension().is_some_and(|x| x == "dvc")
            {
                paths.push(entry.into_path());
            }
        }
        paths.sort();
        paths.iter().map(|p| DvcFile::load(p)).collect()
    }

    /// The outputs of `files`, with their locations; the outputs must lie inside the repository.
    pub fn tracked(&self, files: &[DvcFile]) -> Result<Vec<Tracked>> {
        let mut out = Vec::new();
        for (fi, f) in files.iter().enumerate() {
            for (oi, o) in f.outs.iter().enumerate() {
                let abs = f.out_path(o);
                if !abs.starts_with(&self.root) || abs == self.root {
                    return Err(DataError::BadDvcFile {
                        path: self.rel(&f.path),
                        reason: format!("output '{}' is outside the repository", o.path),
                    });
                }
                out.push(Tracked {
                    file: fi,
                    out: oi,
                    rel: self.rel(&abs),
                    abs,
                });
            }
        }
        Ok(out)
    }

    /// Outputs selected by `targets` (paths of data or of `.dvc` files); all of them if `targets` is empty.
    pub fn select(
        &self,
        files: &[DvcFile],
        cwd: &Path,
        targets: &[PathBuf],
    ) -> Result<Vec<Tracked>> {
        let all = self.tracked(files)?;
        if targets.is_empty() {
            return Ok(all);
        }
        let mut chosen: Vec<Tracked> = Vec::new();
        for t in targets {
            let abs = self.resolve(cwd, t)?;
            let hits: Vec<&Tracked> = all
                .iter()
                .filter(|tr| {
                    tr.abs == abs || files[tr.file].path == abs || abs.starts_with(&tr.abs)
                })
                .collect();
            if hits.is_empty() {
                return Err(DataError::NotTracked(t.display().to_string()));
            }
            for h in hits {
                if !chosen.iter().any(|c| c.file == h.file && c.out == h.out) {
                    chosen.push(h.clone());
                }
            }
        }
        Ok(chosen)
    }

    pub fn out<'a>(&self, files: &'a [DvcFile], t: &Tracked) -> &'a Out {
        &files[t.file].outs[t.out]
    }

    /// Adds `/name` to the `.gitignore` beside `data`, as DVC does, unless already there. Returns the
    /// `.gitignore` touched.
    pub fn gitignore(&self, data: &Path) -> Result<Option<PathBuf>> {
        Ok(self.gitignore_all(std::slice::from_ref(&data.to_path_buf()))?.pop())
    }

    /// [`Repo::gitignore`] for many paths: each `.gitignore` is read and written once for all the paths in
    /// its folder (a pipeline of many stages writing into one folder adds its entries in batches). Returns
    /// the files changed.
    pub fn gitignore_all(&self, data: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if !self.uses_scm() {
            return Ok(Vec::new());
        }
        let mut by_dir: Vec<(&Path, Vec<String>)> = Vec::new();
        for d in data {
            let (Some(dir), Some(name)) = (d.parent(), d.file_name()) else { continue };
            let entry = format!("/{}", escape_wildmatch(&name.to_string_lossy()));
            match by_dir.iter_mut().find(|(p, _)| *p == dir) {
                Some((_, entries)) => entries.push(entry),
                None => by_dir.push((dir, vec![entry])),
            }
        }
        let mut changed = Vec::new();
        for (dir, entries) in by_dir {
            let file = dir.join(".gitignore");
            let mut text = match fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e).at(&file),
            };
            let mut present: std::collections::HashSet<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
            let before = text.len();
            for entry in entries {
                if present.contains(&entry) {
                    continue;
                }
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&entry);
                text.push('\n');
                present.insert(entry);
            }
            if text.len() != before {
                fsutil::write_atomic(&file, text.as_bytes())?;
                changed.push(file);
            }
        }
        Ok(changed)
    }

    /// Saves what this run learned (the state index).
    pub fn close(&self) {
        self.state.save();
    }
}

fn is_git_repo(root: &Path) -> bool {
    root.ancestors().any(|d| d.join(".git").exists())
}

/// Escapes the characters gitignore patterns treat specially, so a file name matches only itself.
fn escape_wildmatch(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') || (i == 0 && matches!(c, '!' | '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
