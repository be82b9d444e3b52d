//! `orchard data …`: DVC-compatible data versioning. Each subcommand calls one function of `orchard-data`
//! and prints what DVC would print (or JSON with `--json`).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use orchard_data::config::Level;
use orchard_data::{add, checkout, gc, ls, remotes, status, transfer, Repo};

#[derive(Args, Debug)]
pub struct DataArgs {
    /// Hide progress bars.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
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
struct TransferArgs {
    targets: Vec<PathBuf>,
    /// Remote to use; default: core.remote (or each output's own `remote:`).
    #[arg(long, short = 'r')]
    remote: Option<String>,
    /// Concurrent transfers (default: 4 × cores, or the remote's `jobs`).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum RemoteCommand {
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

pub async fn run(args: DataArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let open = || Repo::find(&cwd);
    match args.command {
        DataCommand::Init { no_scm, force } => {
            Repo::init(&cwd, no_scm, force).context("failed to initiate DVC")?;
            println!("Initialized DVC repository.");
            if !no_scm {
                println!("\nYou can now commit the changes to git.");
            }
        }
        DataCommand::Add { targets, json } => {
            let repo = open()?;
            let autostage = repo.autostage();
            let added = blocking(move || add::add(&repo, &cwd, &targets, progress)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&added)?);
            } else if !autostage {
                let mut files: Vec<String> = Vec::new();
                for a in &added {
                    files.push(a.dvc_file.clone());
                    files.extend(a.gitignore.clone());
                }
                let mut seen = std::collections::HashSet::new();
                files.retain(|f| seen.insert(f.clone()));
                println!("\nTo track the changes with git, run:\n\n\tgit add {}", files.join(" "));
                println!("\nTo enable auto staging, run:\n\n\torchard data config core.autostage true");
            }
        }
        DataCommand::Commit { targets, force, json } => {
            let repo = open()?;
            let done =
                blocking(move || add::commit(&repo, &cwd, &targets, force, progress)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            }
        }
        DataCommand::Status {
            targets,
            cloud,
            remote,
            json,
        } => {
            let repo = open()?;
            if cloud || remote.is_some() {
                let (name, st) = transfer::cloud_status(&repo, &cwd, &targets, remote.as_deref()).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&st)?);
                } else if st.is_empty() {
                    println!("Cache and remote '{name}' are in sync.");
                } else {
                    for (path, state) in &st {
                        println!("\t{:<20}{path}", format!("{state}:"));
                    }
                }
            } else {
                let st = blocking(move || status::status(&repo, &cwd, &targets)).await?;
                if json {
                    let value: serde_json::Map<String, serde_json::Value> = st
                        .iter()
                        .map(|(file, outs)| {
                            (file.clone(), serde_json::json!([{ "changed outs": outs }]))
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&value)?);
                } else if st.is_empty() {
                    println!("Data and pipelines are up to date.");
                } else {
                    for (file, outs) in &st {
                        println!("{file}:\n\tchanged outs:");
                        for (path, state) in outs {
                            println!("\t\t{:<20}{path}", format!("{state}:"));
                        }
                    }
                }
            }
        }
        DataCommand::Checkout {
            targets,
            force,
            relink,
            summary,
            allow_missing,
            json,
        } => {
            let repo = open()?;
            let report = blocking(move || {
                checkout::checkout(&repo, &cwd, &targets, force, relink, allow_missing, progress)
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_checkout(&report, summary);
                if relink {
                    println!("Relinked successfully");
                }
            }
        }
        DataCommand::Push(t) => {
            let repo = open()?;
            warn_no_remote(&repo, &t.remote);
            let r = transfer::push(&repo, &cwd, &t.targets, t.remote.as_deref(), t.jobs, progress)
                .await
                .context("failed to push data to the cloud")?;
            print_transfer(&r, "pushed", t.json)?;
        }
        DataCommand::Fetch(t) => {
            let repo = open()?;
            warn_no_remote(&repo, &t.remote);
            let r = transfer::fetch(&repo, &cwd, &t.targets, t.remote.as_deref(), t.jobs, progress)
                .await
                .context("failed to fetch data from the cloud")?;
            print_transfer(&r, "fetched", t.json)?;
        }
        DataCommand::Pull {
            transfer: t,
            force,
            allow_missing,
        } => {
            let repo = open()?;
            warn_no_remote(&repo, &t.remote);
            let r = transfer::pull(
                &repo,
                &cwd,
                &t.targets,
                t.remote.as_deref(),
                t.jobs,
                force,
                allow_missing,
                progress,
            )
            .await
            .context("failed to pull data from the cloud")?;
            print_transfer(&r, "fetched", t.json)?;
        }
        DataCommand::Gc {
            workspace,
            all_commits,
            cloud,
            remote,
            force,
            json,
        } => {
            if !workspace && !all_commits {
                bail!("Either of `-w|--workspace` or `-A|--all-commits` needs to be set.");
            }
            if remote.is_some() && !cloud {
                bail!("`--remote` requires `--cloud`");
            }
            let mut what = "This will remove all cache except items used in the workspace".to_string();
            if all_commits {
                what.push_str(" and all git commits");
            }
            what.push_str(" of the current repo.");
            eprintln!("WARNING: {what}");
            if !force && !confirm()? {
                bail!("gc cancelled; use `-f` to skip the confirmation");
            }
            let repo = open()?;
            let scope = gc::GcScope {
                all_commits,
                cloud,
                remote,
            };
            let report = gc::gc(&repo, &scope).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                if report.removed_from_cache > 0 {
                    println!("Removed {} objects from repo cache.", report.removed_from_cache);
                } else {
                    println!("No unused 'repo' cache to remove.");
                }
                match report.removed_from_remote {
                    Some(0) => println!("No unused cache to remove from remote."),
                    Some(n) => println!("Removed {n} objects from remote."),
                    None => {}
                }
            }
        }
        DataCommand::Remote(cmd) => run_remote(cmd, &cwd)?,
        DataCommand::Config {
            name,
            value,
            unset,
            local,
        } => {
            let mut repo = open()?;
            let level = if local { Level::Local } else { Level::Repo };
            if let Some(v) =
                remotes::config_option(&mut repo, &name, value.as_deref(), unset, level)?
            {
                println!("{v}");
            }
        }
        DataCommand::Ls { path, json } => {
            let repo = open()?;
            let entries = ls::ls(&repo, &cwd, &path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in entries {
                    let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                    println!("{}  {:>10}  {}", e.md5, size, e.path);
                }
            }
        }
    }
    Ok(())
}

fn run_remote(cmd: RemoteCommand, cwd: &std::path::Path) -> anyhow::Result<()> {
    let mut repo = Repo::find(cwd)?;
    let level = |local: bool| if local { Level::Local } else { Level::Repo };
    match cmd {
        RemoteCommand::Add {
            name,
            url,
            default,
            force,
            local,
        } => {
            if default {
                println!("Setting '{}' as a default remote.", name.to_lowercase());
            }
            remotes::add(&mut repo, cwd, &name, &url, default, force, level(local))?;
        }
        RemoteCommand::List { json } => {
            let list = remotes::list(&repo);
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    let d = if r.default { "\t(default)" } else { "" };
                    println!("{}\t{}{d}", r.name, r.url);
                }
            }
        }
        RemoteCommand::Modify {
            name,
            option,
            value,
            unset,
            local,
        } => {
            let value = match (unset, value) {
                (true, _) => None,
                (false, Some(v)) => Some(v),
                (false, None) => bail!("a value is required (or --unset)"),
            };
            remotes::modify(&mut repo, &name, &option, value.as_deref(), level(local))?;
        }
        RemoteCommand::Default { name, unset, local } => {
            if unset {
                remotes::set_default(&mut repo, None, level(local))?;
            } else if let Some(n) = name {
                remotes::set_default(&mut repo, Some(&n), level(local))?;
            } else {
                match repo.config.default_remote() {
                    Some(d) => println!("{d}"),
                    None => bail!("No default remote set"),
                }
            }
        }
        RemoteCommand::Remove { name } => remotes::remove(&mut repo, &name)?,
    }
    Ok(())
}

/// Runs file-system-heavy work off the async runtime's threads (it uses rayon's pool internally).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> orchard_data::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .context("worker thread failed")??)
}

fn warn_no_remote(repo: &Repo, explicit: &Option<String>) {
    if explicit.is_none() && repo.config.default_remote().is_none() {
        eprintln!("WARNING: No remote provided and no default remote set.");
    }
}

fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("Are you sure you want to proceed? [y/n] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "yes"))
}

/// `N file(s) <state>` items joined DVC's way; `Everything is up to date.` when all are zero.
fn summary(items: &[(u64, &str)]) -> String {
    let parts: Vec<String> = items
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} file{} {what}", if *n == 1 { "" } else { "s" }))
        .collect();
    match parts.len() {
        0 => "Everything is up to date.".into(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

fn print_checkout(r: &checkout::CheckoutReport, only_summary: bool) {
    if only_summary {
        let s = summary(&[
            (r.files_added, "added"),
            (r.files_modified, "modified"),
            (r.files_deleted, "deleted"),
        ]);
        println!("{}", if s.starts_with("Everything") { "No changes.".into() } else { s });
        return;
    }
    for p in &r.modified {
        println!("M\t{p}");
    }
    for p in &r.added {
        println!("A\t{p}");
    }
    for p in &r.deleted {
        println!("D\t{p}");
    }
}

fn print_transfer(r: &transfer::TransferReport, verb: &str, json: bool) -> anyhow::Result<()> {
    if !r.missing.is_empty() {
        eprintln!(
            "WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache files:\n{}",
            r.missing.join("\n")
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let mut items = vec![(r.transferred, verb)];
    if let Some(c) = &r.checkout {
        print_checkout(c, false);
        items.extend([
            (c.files_modified, "modified"),
            (c.files_added, "added"),
            (c.files_deleted, "deleted"),
        ]);
    }
    println!("{}", summary(&items));
    Ok(())
}
