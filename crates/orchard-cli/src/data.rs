//! `orchard data …`: DVC-compatible data versioning. Each subcommand calls one function of `orchard-data`
//! and prints what DVC would print (or JSON with `--json`).

use std::io::IsTerminal;

use anyhow::{bail, Context};
use orchard_data::config::Level;
use orchard_data::cli::{DataArgs, DataCommand, RemoteCommand};
use orchard_data::{add, checkout, gc, ls, remotes, report, status, transfer, Repo};

pub async fn run(args: DataArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let open = || Repo::find(&cwd);
    // Push, fetch and pull warn, as DVC does, when no remote is named and none is the default.
    let open_to_transfer = |remote: &Option<String>| -> anyhow::Result<Repo> {
        let repo = open()?;
        warn_no_remote(&repo, remote);
        Ok(repo)
    };
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
            match (json, autostage) {
                (true, _) => print_json(&added)?,
                (false, false) => print!("{}", report::git_add_hint(&added)),
                (false, true) => {}
            }
        }
        DataCommand::Commit { targets, force, json } => {
            let repo = open()?;
            let done = blocking(move || add::commit(&repo, &cwd, &targets, force, progress)).await?;
            if json {
                print_json(&done)?;
            }
        }
        DataCommand::Status { targets, cloud, remote, json } if cloud || remote.is_some() => {
            let (name, st) = transfer::cloud_status(&open()?, &cwd, &targets, remote.as_deref()).await?;
            match json {
                true => print_json(&st)?,
                false => print!("{}", report::cloud_status_text(&name, &st)),
            }
        }
        DataCommand::Status { targets, json, .. } => {
            let repo = open()?;
            let st = blocking(move || status::status(&repo, &cwd, &targets)).await?;
            match json {
                true => print_json(&report::status_json(&st))?,
                false => print!("{}", report::status_text(&st)),
            }
        }
        DataCommand::Checkout { targets, force, relink, summary, allow_missing, json } => {
            let repo = open()?;
            let done =
                blocking(move || checkout::checkout(&repo, &cwd, &targets, force, relink, allow_missing, progress)).await?;
            match (json, summary) {
                (true, _) => print_json(&done)?,
                (false, true) => println!("{}", done.summary()),
                (false, false) => print!("{}", done.changes()),
            }
            if relink && !json {
                println!("Relinked successfully");
            }
        }
        DataCommand::Push(t) => {
            let repo = open_to_transfer(&t.remote)?;
            let r = transfer::push(&repo, &cwd, &t.transfer(progress)).await.context("failed to push data to the cloud")?;
            print_transfer(&r, "pushed", t.json)?;
        }
        DataCommand::Fetch(t) => {
            let repo = open_to_transfer(&t.remote)?;
            let r = transfer::fetch(&repo, &cwd, &t.transfer(progress)).await.context("failed to fetch data from the cloud")?;
            print_transfer(&r, "fetched", t.json)?;
        }
        DataCommand::Pull { transfer: t, force, allow_missing } => {
            let repo = open_to_transfer(&t.remote)?;
            let r = transfer::pull(&repo, &cwd, &t.transfer(progress), force, allow_missing)
                .await
                .context("failed to pull data from the cloud")?;
            print_transfer(&r, "fetched", t.json)?;
        }
        DataCommand::Gc { workspace, all_commits, cloud, remote, force, json } => {
            if !workspace && !all_commits {
                bail!("Either of `-w|--workspace` or `-A|--all-commits` needs to be set.");
            }
            if remote.is_some() && !cloud {
                bail!("`--remote` requires `--cloud`");
            }
            eprintln!("{}", report::gc_warning(all_commits));
            if !force && !confirm()? {
                bail!("gc cancelled; use `-f` to skip the confirmation");
            }
            let done = gc::gc(&open()?, &gc::GcScope { all_commits, cloud, remote }).await?;
            match json {
                true => print_json(&done)?,
                false => print!("{}", report::gc_text(&done)),
            }
        }
        DataCommand::Remote(cmd) => run_remote(cmd, &cwd)?,
        DataCommand::Config { name, value, unset, local } => {
            let level = if local { Level::Local } else { Level::Repo };
            if let Some(v) = remotes::config_option(&mut open()?, &name, value.as_deref(), unset, level)? {
                println!("{v}");
            }
        }
        DataCommand::Ls { path, json } => {
            let entries = ls::ls(&open()?, &cwd, &path)?;
            match json {
                true => print_json(&entries)?,
                false => print!("{}", report::ls_text(&entries)),
            }
        }
    }
    Ok(())
}

fn run_remote(cmd: RemoteCommand, cwd: &std::path::Path) -> anyhow::Result<()> {
    let mut repo = Repo::find(cwd)?;
    let level = |local: bool| if local { Level::Local } else { Level::Repo };
    match cmd {
        RemoteCommand::Add { name, url, default, force, local } => {
            if default {
                println!("Setting '{}' as a default remote.", name.to_lowercase());
            }
            remotes::add(&mut repo, cwd, &name, &url, default, force, level(local))?;
        }
        RemoteCommand::List { json: true } => print_json(&remotes::list(&repo))?,
        RemoteCommand::List { json: false } => print!("{}", report::remotes_text(&remotes::list(&repo))),
        RemoteCommand::Modify { name, option, value, unset, local } => {
            if !unset && value.is_none() {
                bail!("a value is required (or --unset)");
            }
            let value = value.filter(|_| !unset);
            remotes::modify(&mut repo, &name, &option, value.as_deref(), level(local))?;
        }
        RemoteCommand::Default { name, unset, local } => match (unset, name) {
            (true, _) => remotes::set_default(&mut repo, None, level(local))?,
            (false, Some(n)) => remotes::set_default(&mut repo, Some(&n), level(local))?,
            (false, None) => match repo.config.default_remote() {
                Some(d) => println!("{d}"),
                None => bail!("No default remote set"),
            },
        },
        RemoteCommand::Remove { name } => remotes::remove(&mut repo, &name)?,
    }
    Ok(())
}

/// Runs file-system-heavy work off the async runtime's threads (it uses rayon's pool internally).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> orchard_data::Result<T> + Send + 'static) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(f).await.context("worker thread failed")??)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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

fn print_transfer(r: &transfer::TransferReport, verb: &str, json: bool) -> anyhow::Result<()> {
    if let Some(w) = r.missing_warning() {
        eprintln!("{w}");
    }
    match json {
        true => print_json(r),
        false => {
            print!("{}", r.text(verb));
            Ok(())
        }
    }
}
