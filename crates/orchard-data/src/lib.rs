//! Data versioning compatible with DVC 3.
//!
//! Reads and writes DVC's formats byte for byte — `.dvc` files, `.dvc/config`, the `files/md5` cache and
//! remote layout, `.dir` listings — so a repository can be used with `dvc` and `orchard data` in turn.
//! Hashing and copying run in parallel across cores, a state index avoids rehashing unchanged files, and
//! every write lands by rename.
//!
//! Layout: formats (`hash`, `dvcfile`, `config`), storage (`cache`, `state`, `workspace`), the repository
//! (`repo`), and one module per command (`add`, `status`, `checkout`, `transfer`, `gc`, `remotes`, `ls`).

pub mod add;
pub mod cache;
pub mod checkout;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod dvcfile;
pub mod error;
pub mod fsutil;
pub mod gc;
pub mod hash;
pub mod ls;
pub mod progress;
pub mod remotes;
pub mod report;
pub mod repo;
pub mod state;
pub mod status;
pub mod transfer;
pub mod workspace;

pub use error::{DataError, Result};
pub use repo::Repo;
