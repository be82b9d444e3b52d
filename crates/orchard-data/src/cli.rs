//! The flags of `orchard data …`, DVC's names and meanings (`dvc add`, `dvc push -r`, `dvc gc -w`, …), kept
//! next to the commands they steer. Behind the `cli` feature: a library user calls the functions directly.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::transfer;

#[derive(Args, Debug)]
pub struct DataArgs {
    /// Hide progress bars.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Create `.dvc/` (config, .gitignore) and `.dvcignore` in the current folder, as `dvc init` does.
    Init {
        /// Do not require git.
        #[arg(long)]
        no_scm: bool,
        /// Recreate `.dvc/` if it exists.
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// Track files or folders: hash them, store them in the cache, write `<path>.dvc` and a .gitignore entry.
    Add {
        #[arg(required = true)]
        targets: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Show tracked data that changed in the workspace or is missing from the cache (or, with -c, the remote).
    Status {
        targets: Vec<PathBuf>,
        /// Compare the cache with a remote instead of the workspace with the cache.
        #[arg(long, short = 'c')]
        cloud: bool,
        /// Remote to compare with (implies --cloud); default: core.remote.
        #[arg(long, short = 'r')]
        remote: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Record the current content of changed tracked data in its .dvc files and the cache.
    Commit {
        targets: Vec<PathBuf>,
        /// Commit outputs that changed (DVC asks; without a terminal it needs this).
        #[arg(long, short = 'f')]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make the workspace match the .dvc files, from the cache.
    Checkout {
        targets: Vec<PathBuf>,
        /// Overwrite or delete workspace files whose content is not in the cache.
        #[arg(long, short = 'f')]
        force: bool,
        /// Recreate every file with the current cache.type, changed or not.
        #[arg(long)]
        relink: bool,
        /// Print only counts.
        #[arg(long)]
        summary: bool,
        /// Skip outputs whose objects are missing instead of failing.
        #[arg(long)]
        allow_missing: bool,
        #[arg(long)]
        json: bool,
    },
    /// Upload tracked data missing from the remote.
    Push(TransferArgs),
    /// Download tracked data missing from the cache (without touching the workspace).
    Fetch(TransferArgs),
    /// Fetch, then check out.
    Pull {
        #[command(flatten)]
        transfer: TransferArgs,
        /// Overwrite workspace files whose content is not in the cache.
        #[arg(long, short = 'f')]
        force: bool,
        /// Skip outputs whose objects are missing instead of failing.
        #[arg(long)]
        allow_missing: bool,
    },
    /// Remove cache (and with -c remote) objects that nothing in the workspace (or history) uses.
    Gc {
        /// Keep what the workspace's .dvc files use (required, as in DVC).
        #[arg(long, short = 'w')]
        workspace: bool,
        /// Also keep what any git commit's .dvc files use.
        #[arg(long, short = 'A')]
        all_commits: bool,
        /// Collect the remote too.
        #[arg(long, short = 'c')]
        cloud: bool,
        #[arg(long, short = 'r')]
        remote: Option<String>,
        /// Do not ask for confirmation (needed when not on a terminal).
        #[arg(long, short = 'f')]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Manage remotes in .dvc/config.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Read or set an option of .dvc/config by its dotted name: core.autostage, cache.type, remote.NAME.url, …
    Config {
        name: String,
        value: Option<String>,
        #[arg(long, short = 'u')]
        unset: bool,
        /// Write to .dvc/config.local (git-ignored) instead of .dvc/config.
        #[arg(long)]
        local: bool,
    },
    /// List the files of a tracked folder (from its recorded listing).
    Ls {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct TransferArgs {
    pub targets: Vec<PathBuf>,
    /// Remote to use; default: core.remote (or each output's own `remote:`).
    #[arg(long, short = 'r')]
    pub remote: Option<String>,
    /// Concurrent transfers (default: 4 × cores, or the remote's `jobs`).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

impl TransferArgs {
    pub fn transfer(&self, show_progress: bool) -> transfer::Transfer<'_> {
        transfer::Transfer { targets: &self.targets, remote: self.remote.as_deref(), jobs: self.jobs, show_progress }
    }
}

#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Add a remote: a local folder or s3://bucket/prefix.
    Add {
        name: String,
        url: String,
        /// Also make it the default remote.
        #[arg(long, short = 'd')]
        default: bool,
        /// Replace an existing remote of that name.
        #[arg(long, short = 'f')]
        force: bool,
        /// Write to .dvc/config.local (git-ignored) instead of .dvc/config.
        #[arg(long)]
        local: bool,
    },
    /// List remotes: NAME, URL, and (default).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set or unset an option (url, endpointurl, region, access_key_id, secret_access_key, jobs, …).
    Modify {
        name: String,
        option: String,
        value: Option<String>,
        #[arg(long, short = 'u')]
        unset: bool,
        #[arg(long)]
        local: bool,
    },
    /// Show or set the default remote.
    Default {
        name: Option<String>,
        #[arg(long, short = 'u')]
        unset: bool,
        #[arg(long)]
        local: bool,
    },
    /// Remove a remote.
    Remove { name: String },
}
