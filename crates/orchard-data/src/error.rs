//! The errors of data versioning. Every one names the path or object it is about; messages follow DVC's
//! wording where DVC has one, so a user switching tools recognises them.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {}", .path.display(), describe_io(.source))]
    Io { path: PathBuf, source: io::Error },
    #[error("you are not inside of a DVC repository (checked up to '{}'); run `orchard data init` first", .0.display())]
    NotARepo(PathBuf),
    #[error("'{}' exists. Use `-f` to force.", .0.display())]
    AlreadyInitialized(PathBuf),
    #[error("{} is not tracked by any supported SCM tool (e.g. Git). Use `--no-scm` if you don't want to use any SCM.", .0.display())]
    NoScm(PathBuf),
    #[error("output '{0}' does not exist")]
    OutputMissing(String),
    #[error("output '{0}' is not a file or directory")]
    NotFileOrDir(String),
    #[error("Cached output(s) outside of DVC project: {0}")]
    OutsideRepo(String),
    #[error("Path '{0}' is ignored by .dvcignore")]
    Ignored(String),
    #[error("DVC file '{0}' cannot be an output.")]
    DvcFileAsOutput(String),
    #[error("Cannot add '{path}', because it is overlapping with other DVC tracked output: '{other}'")]
    Overlap { path: String, other: String },
    #[error("'{path}' is not a valid .dvc file: {reason}")]
    BadDvcFile { path: String, reason: String },
    #[error("bad config {path}: {reason}")]
    BadConfig { path: String, reason: String },
    #[error("'{0}' does not exist or is not tracked by a .dvc file")]
    NotTracked(String),
    #[error("remote '{0}' already exists. Use `-f|--force` to overwrite it.")]
    RemoteExists(String),
    #[error("remote '{0}' doesn't exist.")]
    NoSuchRemote(String),
    #[error("no remote specified in Repo: '{0}'. Create a default remote with\n    orchard data remote add -d <remote name> <remote url>")]
    NoRemote(String),
    #[error("remote '{remote}': {source}")]
    Remote {
        remote: String,
        source: orchard_blob::BlobError,
    },
    #[error("Unsupported cache type(s): {0}")]
    BadCacheType(String),
    #[error("Can't remove the following unsaved files without confirmation. Use `--force` to force.\n{}", .0.join("\n"))]
    Unsaved(Vec<String>),
    #[error("Checkout failed for following targets:\n{}\nIs your cache up to date?", .0.join("\n"))]
    CheckoutFailed(Vec<String>),
    #[error("{count} files failed to {action}:\n{}", .details.join("\n"))]
    TransferFailed {
        count: usize,
        action: &'static str,
        details: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
}

fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Attaches the path an I/O error happened on.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
