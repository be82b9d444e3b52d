//! The data workflow end to end through the library: add → status → edit → checkout → push → pull → gc,
//! on a local remote. (Compatibility with the real `dvc` is covered by tests/interop/test_data_dvc.py.)

use std::fs;
use std::path::{Path, PathBuf};

use orchard_data::{add, checkout, gc, remotes, status, transfer, DataError, Repo};

fn repo_with_data() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::write(root.join("data/a.txt"), "alpha\n").unwrap();
    fs::write(root.join("data/sub/b.txt"), "beta\n").unwrap();
    fs::write(root.join("model.bin"), vec![7u8; 100_000]).unwrap();
    let repo = Repo::init(&root, true, false).unwrap();
    (dir, repo)
}

fn targets(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn add_status_edit_checkout() {
    let (_d, repo) = repo_with_data();
    let root = repo.root.clone();
    let added = add::add(&repo, &root, &targets(&["data", "model.bin"]), false).unwrap();
    assert_eq!(added[0].nfiles, Some(2));
    assert!(added[0].md5.ends_with(".dir"));
    assert!(root.join("data.dvc").is_file() && root.join("model.bin.dvc").is_file());
    assert!(status::status(&repo, &root, &[]).unwrap().is_empty());

    fs::write(root.join("data/a.txt"), "edited\n").unwrap();
    fs::remove_file(root.join("model.bin")).unwrap();
    let st = status::status(&repo, &root, &[]).unwrap();
    assert_eq!(st["data.dvc"]["data"], "modified");
    assert_eq!(st["model.bin.dvc"]["model.bin"], "deleted");

    // The edit is not in the cache: checkout refuses to lose it without --force.
    let err = checkout::checkout(&repo, &root, &[], false, false, false, false).unwrap_err();
    assert!(matches!(err, DataError::Unsaved(ref p) if p == &vec!["data/a.txt".to_string()]));
    assert_eq!(fs::read_to_string(root.join("data/a.txt")).unwrap(), "edited\n");
    let report = checkout::checkout(&repo, &root, &[], true, false, false, false).unwrap();
    assert_eq!(report.modified, vec!["data/"]);
    assert_eq!(report.added, vec!["model.bin"]);
    assert_eq!(fs::read_to_string(root.join("data/a.txt")).unwrap(), "alpha\n");
    assert_eq!(fs::read(root.join("model.bin")).unwrap(), vec![7u8; 100_000]);
    assert!(status::status(&repo, &root, &[]).unwrap().is_empty());
}

#[test]
fn push_pull_and_gc_through_a_local_remote() {
    let (d, mut repo) = repo_with_data();
    let root = repo.root.clone();
    let remote_dir = d.path().join("remote");
    remotes::add(&mut repo, &root, "store", remote_dir.to_str().unwrap(), true, false, orchard_data::config::Level::Repo).unwrap();
    add::add(&repo, &root, &targets(&["data", "model.bin"]), false).unwrap();
    let pushed = rt().block_on(transfer::push(&repo, &root, &transfer::Transfer { jobs: Some(4), ..Default::default() })).unwrap();
    assert_eq!(pushed.transferred, 4); // two files, the listing, the model
    let again = rt().block_on(transfer::push(&repo, &root, &transfer::Transfer::default())).unwrap();
    assert_eq!(again.transferred, 0);

    // Lose the cache and the workspace; pull brings both back.
    make_writable(&repo.cache.root);
    fs::remove_dir_all(&repo.cache.root).unwrap();
    fs::remove_dir_all(root.join("data")).unwrap();
    fs::remove_file(root.join("model.bin")).unwrap();
    let repo = Repo::open(&root).unwrap();
    let pulled = rt()
        .block_on(transfer::pull(&repo, &root, &transfer::Transfer::default(), false, false))
        .unwrap();
    assert_eq!(pulled.transferred, 4);
    assert_eq!(fs::read_to_string(root.join("data/sub/b.txt")).unwrap(), "beta\n");
    assert!(status::status(&repo, &root, &[]).unwrap().is_empty());

    // A new version of the model: gc removes the old object and keeps the current ones.
    fs::write(root.join("model.bin"), b"v2").unwrap();
    add::add(&repo, &root, &targets(&["model.bin"]), false).unwrap();
    let scope = gc::GcScope { all_commits: false, cloud: true, remote: None };
    let report = rt().block_on(gc::gc(&repo, &scope)).unwrap();
    assert_eq!(report.removed_from_cache, 1);
    assert_eq!(report.removed_from_remote, Some(1));
    assert!(status::status(&repo, &root, &[]).unwrap().is_empty());
}

#[test]
fn overlapping_and_outside_paths_are_refused() {
    let (d, repo) = repo_with_data();
    let root = repo.root.clone();
    add::add(&repo, &root, &targets(&["data"]), false).unwrap();
    let err = add::add(&repo, &root, &targets(&["data/a.txt"]), false).unwrap_err();
    assert!(err.to_string().contains("overlapping"), "{err}");
    fs::write(d.path().join("outside"), "x").unwrap();
    let err = add::add(&repo, &root, &targets(&["../outside"]), false).unwrap_err();
    assert!(matches!(err, DataError::OutsideRepo(_)));
    let err = add::add(&repo, &root, &targets(&["data.dvc"]), false).unwrap_err();
    assert!(matches!(err, DataError::DvcFileAsOutput(_)));
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for e in walk(dir) {
        let _ = fs::set_permissions(&e, fs::Permissions::from_mode(0o644));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
