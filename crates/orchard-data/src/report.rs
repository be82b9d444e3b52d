//! What each command's outcome reads like on a terminal, in DVC's words (scripts use `--json` instead, the
//! reports' serde form). Kept beside the reports so that the wording a DVC user knows is written once and
//! tested here, not in the binary.

use std::collections::BTreeMap;

use crate::add::Added;
use crate::checkout::CheckoutReport;
use crate::gc::GcReport;
use crate::ls::Listed;
use crate::remotes::RemoteInfo;
use crate::status::Status;
use crate::transfer::TransferReport;

/// `N file(s) <what>` items joined DVC's way (`1 file fetched and 2 files added`); `Everything is up to
/// date.` when all are zero.
pub fn summary(items: &[(u64, &str)]) -> String {
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

/// `dvc add`'s hint: the files to stage in git (each once, in order).
pub fn git_add_hint(added: &[Added]) -> String {
    let mut files: Vec<&str> = Vec::new();
    for a in added {
        files.push(&a.dvc_file);
        files.extend(a.gitignore.as_deref());
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(*f));
    format!(
        "\nTo track the changes with git, run:\n\n\tgit add {}\n\nTo enable auto staging, run:\n\n\torchard data config core.autostage true\n",
        files.join(" ")
    )
}

impl CheckoutReport {
    /// `M\tpath`, `A\tpath`, `D\tpath` lines, modified first.
    pub fn changes(&self) -> String {
        let mut out = String::new();
        for (mark, paths) in [("M", &self.modified), ("A", &self.added), ("D", &self.deleted)] {
            for p in paths {
                out.push_str(&format!("{mark}\t{p}\n"));
            }
        }
        out
    }

    /// `checkout --summary`: the counts, or `No changes.`.
    pub fn summary(&self) -> String {
        let items = [(self.files_added, "added"), (self.files_modified, "modified"), (self.files_deleted, "deleted")];
        let s = summary(&items);
        if s.starts_with("Everything") {
            "No changes.".into()
        } else {
            s
        }
    }
}

impl TransferReport {
    /// DVC's warning about objects found neither in the cache nor on the remote (None when all were found).
    pub fn missing_warning(&self) -> Option<String> {
        (!self.missing.is_empty()).then(|| {
            format!(
                "WARNING: Some of the cache files do not exist neither locally nor on remote. Missing cache files:\n{}",
                self.missing.join("\n")
            )
        })
    }

    /// The checkout's changes (for a pull), then `3 files pushed` / `1 file fetched and 2 files added`.
    pub fn text(&self, verb: &str) -> String {
        let mut items = vec![(self.transferred, verb)];
        let mut out = String::new();
        if let Some(c) = &self.checkout {
            out.push_str(&c.changes());
            items.extend([(c.files_modified, "modified"), (c.files_added, "added"), (c.files_deleted, "deleted")]);
        }
        out.push_str(&summary(&items));
        out.push('\n');
        out
    }
}

/// `dvc status`: each changed `.dvc` file with its outputs' states.
pub fn status_text(status: &Status) -> String {
    if status.is_empty() {
        return "Data and pipelines are up to date.\n".into();
    }
    let mut out = String::new();
    for (file, outs) in status {
        out.push_str(&format!("{file}:\n\tchanged outs:\n"));
        for (path, state) in outs {
            out.push_str(&format!("\t\t{:<20}{path}\n", format!("{state}:")));
        }
    }
    out
}

/// `dvc status --json`: `{file: [{"changed outs": {path: state}}]}`.
pub fn status_json(status: &Status) -> serde_json::Value {
    status.iter().map(|(file, outs)| (file.clone(), serde_json::json!([{ "changed outs": outs }]))).collect()
}

/// `dvc status --cloud`: each object that differs, or that cache and remote are in sync.
pub fn cloud_status_text(remote: &str, status: &BTreeMap<String, &'static str>) -> String {
    if status.is_empty() {
        return format!("Cache and remote '{remote}' are in sync.\n");
    }
    status.iter().map(|(path, state)| format!("\t{:<20}{path}\n", format!("{state}:"))).collect()
}

/// `dvc gc`'s counts.
pub fn gc_text(report: &GcReport) -> String {
    let mut out = match report.removed_from_cache {
        0 => "No unused 'repo' cache to remove.\n".to_string(),
        n => format!("Removed {n} objects from repo cache.\n"),
    };
    match report.removed_from_remote {
        Some(0) => out.push_str("No unused cache to remove from remote.\n"),
        Some(n) => out.push_str(&format!("Removed {n} objects from remote.\n")),
        None => {}
    }
    out
}

/// `dvc gc`'s warning of what it keeps.
pub fn gc_warning(all_commits: bool) -> String {
    let commits = if all_commits { " and all git commits" } else { "" };
    format!("WARNING: This will remove all cache except items used in the workspace{commits} of the current repo.")
}

/// A tracked folder's files: md5, size, path.
pub fn ls_text(entries: &[Listed]) -> String {
    entries
        .iter()
        .map(|e| {
            let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            format!("{}  {:>10}  {}\n", e.md5, size, e.path)
        })
        .collect()
}

/// `dvc remote list`: name, URL, and `(default)`.
pub fn remotes_text(remotes: &[RemoteInfo]) -> String {
    remotes
        .iter()
        .map(|r| format!("{}\t{}{}\n", r.name, r.url, if r.default { "\t(default)" } else { "" }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_dvc() {
        assert_eq!(summary(&[(0, "pushed")]), "Everything is up to date.");
        assert_eq!(summary(&[(1, "fetched"), (2, "added")]), "1 file fetched and 2 files added");
        assert_eq!(summary(&[(3, "fetched"), (1, "modified"), (2, "added")]), "3 files fetched, 1 file modified and 2 files added");
    }

    #[test]
    fn a_pull_lists_its_changes_then_the_counts() {
        let checkout = CheckoutReport {
            added: vec!["data/b.csv".into()],
            modified: vec!["data/a.csv".into()],
            files_added: 1,
            files_modified: 1,
            ..CheckoutReport::default()
        };
        let report = TransferReport { transferred: 2, checkout: Some(checkout.clone()), ..TransferReport::default() };
        assert_eq!(report.text("fetched"), "M\tdata/a.csv\nA\tdata/b.csv\n2 files fetched, 1 file modified and 1 file added\n");
        assert_eq!(checkout.summary(), "1 file added and 1 file modified");
        assert_eq!(CheckoutReport::default().summary(), "No changes.");
        assert_eq!(report.missing_warning(), None);
    }

    #[test]
    fn the_git_hint_names_each_file_once() {
        let added = |dvc: &str, ignore: Option<&str>| Added {
            dvc_file: dvc.into(),
            path: String::new(),
            md5: String::new(),
            size: 0,
            nfiles: None,
            gitignore: ignore.map(str::to_string),
        };
        let hint = git_add_hint(&[added("a.dvc", Some(".gitignore")), added("b.dvc", Some(".gitignore"))]);
        assert!(hint.contains("\tgit add a.dvc .gitignore b.dvc\n"), "{hint}");
    }

    #[test]
    fn status_reads_like_dvc() {
        let mut status = Status::new();
        status.entry("data.dvc".into()).or_default().insert("data".into(), "modified");
        assert_eq!(status_text(&status), "data.dvc:\n\tchanged outs:\n\t\tmodified:           data\n");
        assert_eq!(status_json(&status), serde_json::json!({"data.dvc": [{"changed outs": {"data": "modified"}}]}));
        assert_eq!(status_text(&Status::new()), "Data and pipelines are up to date.\n");
        let gc = GcReport { removed_from_cache: 0, removed_from_remote: Some(3), missing_listings: vec![] };
        assert_eq!(gc_text(&gc), "No unused 'repo' cache to remove.\nRemoved 3 objects from remote.\n");
    }
}
