//! `orchard repro`'s orchestration without the binary: params composed from `conf/` with overrides, the
//! stages run and recorded in the store, a sweep as one run per point, a dry run that writes nothing, a
//! queued run, and the recorded runs read back.

use std::path::{Path, PathBuf};

use orchard_orchestrator::history;
use orchard_orchestrator::repro::{self, Request};
use orchard_store::testing::TestDb;
use orchard_store::Store;
use tokio::runtime::Handle;

const PIPELINE: &str = "\
stages:
  scale:
    cmd: sh -c 'echo \"lr=${train.lr}\" > scaled.txt'
    deps: [data.txt]
    params: [train.lr]
    outs: [scaled.txt]
";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    orchard_data::Repo::init(dir.path(), true, false).unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/config.yaml"), "train:\n  lr: 0.1\n").unwrap();
    std::fs::write(dir.path().join("data.txt"), "rows\n").unwrap();
    std::fs::write(dir.path().join("dvc.yaml"), PIPELINE).unwrap();
    dir
}

fn request(root: &Path, overrides: &[&str]) -> Request {
    Request {
        root: std::fs::canonicalize(root).unwrap(),
        targets: vec![],
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
        multirun: false,
        jobs: 1,
        dry: false,
        progress_to_stderr: true,
        config_dir: PathBuf::from("conf"),
        config_name: "config".into(),
        force: false,
        single_item: false,
        no_run_cache: false,
        tracking: None,
        stop: orchard_pipeline::Stop::new(),
    }
}

/// Runs `work` in a fresh project against the test store, on a blocking thread (the orchestrator waits on the
/// store through the runtime's handle), and returns its result with the project's folder.
async fn in_project<T: Send + 'static>(
    db: &TestDb,
    work: impl FnOnce(&Path, &Store, &Handle) -> T + Send + 'static,
) -> (T, tempfile::TempDir) {
    let dir = project();
    let root = dir.path().to_path_buf();
    let (store, rt) = (db.store.clone(), Handle::current());
    let out = tokio::task::spawn_blocking(move || work(&root, &store, &rt)).await.unwrap();
    (out, dir)
}

fn read(root: &Path, file: &str) -> String {
    std::fs::read_to_string(root.join(file)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn runs_are_composed_run_recorded_and_read_back() {
    let db = TestDb::sqlite().await;
    let ((first, again), dir) = in_project(&db, |root, store, rt| {
        let first = repro::run_here(rt, Some(store), &request(root, &["train.lr=0.5"])).unwrap();
        let again = repro::run_here(rt, Some(store), &request(root, &["train.lr=0.5"])).unwrap();
        (first, again)
    })
    .await;
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert_eq!(first.done[0].stages[0].state, "ran");
    assert_eq!(read(dir.path(), "params.yaml"), "train:\n  lr: 0.5\n", "the override is composed in");
    assert_eq!(read(dir.path(), "scaled.txt"), "lr=0.5\n");
    assert!(again.done[0].up_to_date(), "nothing changed: {:?}", again.done[0].stages);

    let ((latest, runs), _) = in_project(&db, |_, store, rt| {
        (history::find(rt, store, "latest", None).unwrap(), history::recent(rt, store, 10).unwrap())
    })
    .await;
    assert_eq!(latest.0.run_id, again.done[0].run_id);
    assert_eq!(latest.0.overrides, vec!["train.lr=0.5".to_string()]);
    assert_eq!(runs.len(), 2);
    assert_eq!(history::settled_ok(&runs[1].1), 1, "the first run's stage succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_sweep_runs_each_point_and_a_dry_run_writes_nothing() {
    let db = TestDb::sqlite().await;
    let (((dry, wrote), sweep), dir) = in_project(&db, |root, store, rt| {
        let mut dry = request(root, &["train.lr=0.7"]);
        dry.dry = true;
        let dry = repro::run_here(rt, Some(store), &dry).unwrap();
        let wrote = root.join("params.yaml").exists();
        let mut sweep = request(root, &["train.lr=0.1,0.2"]);
        sweep.multirun = true;
        ((dry, wrote), repro::run_here(rt, Some(store), &sweep).unwrap())
    })
    .await;
    assert_eq!(dry.done[0].stages[0].state, "due");
    assert_eq!(dry.done[0].run_id, "", "a dry run is not recorded");
    assert!(!wrote, "a dry run composes params.yaml without writing it");
    assert_eq!(sweep.asked, 2);
    let overrides: Vec<&str> = sweep.done.iter().map(|d| d.overrides[0].as_str()).collect();
    assert_eq!(overrides, ["train.lr=0.1", "train.lr=0.2"]);
    assert_eq!(read(dir.path(), "scaled.txt"), "lr=0.2\n", "the last point ran last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_interrupted_sweep_starts_nothing_more_and_a_queued_run_waits() {
    let db = TestDb::sqlite().await;
    let ((sweep, queued, found), _dir) = in_project(&db, |root, store, rt| {
        let mut sweep = request(root, &["train.lr=0.1,0.2,0.3"]);
        sweep.multirun = true;
        sweep.stop.interrupt();
        let sweep = repro::run_here(rt, Some(store), &sweep).unwrap();
        let mut told = 0;
        let queued = repro::queue(rt, store, &request(root, &[]), &mut |_| told += 1).unwrap();
        assert_eq!(told, 1, "each queued run is told as it is queued");
        let found = history::find(rt, store, &queued[0].run_id[..8], None).unwrap();
        (sweep, queued, found)
    })
    .await;
    assert_eq!(sweep.done.len(), 1, "only the first point starts once interrupted");
    assert!(sweep.failures.iter().any(|f| f.contains("not run (interrupted)")), "{:?}", sweep.failures);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].stages, 1);
    assert_eq!(found.0.status, "QUEUED");
    assert_eq!(found.1[0].stage, "scale");

    assert_eq!(
        history::store_uri(None, Some(Path::new("/p"))).unwrap(),
        "sqlite:////p/.dvc/tmp/orchard.db"
    );
    assert!(history::store_uri(None, None).is_err());
}
