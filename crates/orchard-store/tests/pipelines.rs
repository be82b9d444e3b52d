//! Pipeline runs on every engine: leases follow the DAG, expire when a worker dies, are never shared by
//! concurrent workers; failures block what depends on them; schedules fire once per due time.

use orchard_store::pipelines::*;
use orchard_store::{on_both, StoreError};


fn run(id: &str, created: i64) -> PipelineRun {
    PipelineRun {
        run_id: id.into(),
        project: "/p".into(),
        targets: vec![],
        overrides: vec!["a=1".into()],
        options: "{}".into(),
        status: QUEUED.into(),
        tracking_run_id: None,
        schedule: None,
        created_ms: created,
        start_ms: None,
        end_ms: None,
    }
}

fn ok(status: &str, at: i64) -> StageResult {
    StageResult { status: status.into(), attempts: 1, end_ms: at, ..StageResult::default() }
}

on_both!(leases_follow_the_dag_and_expire, |db| {
    let s = &db.store;
    // a → b, a → c; c fails, so d (after c) is blocked.
    let stages = [
        NewStageRun { stage: "a".into(), upstream: vec![] },
        NewStageRun { stage: "b".into(), upstream: vec!["a".into()] },
        NewStageRun { stage: "c".into(), upstream: vec!["a".into()] },
        NewStageRun { stage: "d".into(), upstream: vec!["c".into()] },
    ];
    s.create_pipeline_run(&run("r1", 10), &stages).await.unwrap();
    let (p, a) = s.lease_stage_run("w1", 100, 200).await.unwrap().unwrap();
    assert_eq!((p.run_id.as_str(), a.stage.as_str(), p.status.as_str()), ("r1", "a", RUNNING));
    // Nothing else is ready while a runs under a live lease.
    assert!(s.lease_stage_run("w2", 150, 250).await.unwrap().is_none());
    // w1 dies: once its lease passes, w2 takes a over, and w1 can no longer record a result.
    let (_, again) = s.lease_stage_run("w2", 201, 300).await.unwrap().unwrap();
    assert_eq!((again.stage.as_str(), again.worker.as_deref()), ("a", Some("w2")));
    assert!(!s.renew_lease("r1", "a", "w1", 400).await.unwrap());
    assert!(s.renew_lease("r1", "a", "w2", 400).await.unwrap());
    assert_eq!(s.finish_stage_run("r1", "a", Some("w1"), &ok(SUCCEEDED, 210)).await.unwrap(), None);
    assert_eq!(s.finish_stage_run("r1", "a", Some("w2"), &ok(SUCCEEDED, 220)).await.unwrap().as_deref(), Some(RUNNING));
    let (_, b) = s.lease_stage_run("w1", 230, 400).await.unwrap().unwrap();
    let (_, c) = s.lease_stage_run("w2", 230, 400).await.unwrap().unwrap();
    assert_eq!((b.stage.as_str(), c.stage.as_str()), ("b", "c"));
    assert_eq!(s.finish_stage_run("r1", "c", Some("w2"), &ok(FAILED, 240)).await.unwrap().as_deref(), Some(RUNNING));
    assert!(s.lease_stage_run("w2", 250, 400).await.unwrap().is_none());
    let (p, st) = s.get_pipeline_run("r1").await.unwrap().unwrap();
    assert_eq!(p.status, RUNNING, "b still runs");
    assert_eq!(st.iter().map(|x| x.status.as_str()).collect::<Vec<_>>(), [SUCCEEDED, RUNNING, FAILED, BLOCKED]);
    // The last stage's worker is the one that sees the run end.
    assert_eq!(s.finish_stage_run("r1", "b", Some("w1"), &ok(SUCCEEDED, 260)).await.unwrap().as_deref(), Some(FAILED));
    let (p, _) = s.get_pipeline_run("r1").await.unwrap().unwrap();
    assert_eq!((p.status.as_str(), p.end_ms), (FAILED, Some(260)));
    assert_eq!(p.overrides, ["a=1"]);
});

on_both!(concurrent_workers_never_share_a_stage, |db| {
    let stages: Vec<NewStageRun> = (0..40).map(|i| NewStageRun { stage: format!("s{i}"), upstream: vec![] }).collect();
    db.store.create_pipeline_run(&run("r", 1), &stages).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some((_, st)) = s.lease_stage_run(&format!("w{w}"), 5, 1_000_000).await.unwrap() {
                got.push(st.stage);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let mut expected: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    expected.sort();
    assert_eq!(all, expected, "every stage leased exactly once");
});

on_both!(schedules_fire_once_per_due_time, |db| {
    let s = &db.store;
    let sch = Schedule {
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        project: "/p".into(),
        targets: vec!["train".into()],
        overrides: vec![],
        enabled: true,
        next_ms: 1000,
        created_ms: 1,
    };
    s.put_schedule(&sch).await.unwrap();
    assert_eq!(s.list_schedules().await.unwrap(), vec![sch.clone()]);
    assert!(s.advance_schedule("nightly", 1000, 2000).await.unwrap());
    assert!(!s.advance_schedule("nightly", 1000, 2000).await.unwrap(), "a second server lost the race");
    s.delete_schedule("nightly").await.unwrap();
    assert!(matches!(s.delete_schedule("nightly").await, Err(StoreError::NotFound(_))));
});

on_both!(local_runs_are_not_leased_and_one_project_runs_one_queued_run_at_a_time, |db| {
    let s = &db.store;
    let one = [NewStageRun { stage: "a".into(), upstream: vec![] }];
    // A run executing in its own process (recorded RUNNING): never handed to a worker.
    s.create_pipeline_run(&PipelineRun { status: RUNNING.into(), ..run("local", 1) }, &one).await.unwrap();
    assert!(s.lease_stage_run("w", 5, 100).await.unwrap().is_none());
    // Two queued runs of one project: the second waits for the first to finish.
    s.create_pipeline_run(&run("q1", 2), &one).await.unwrap();
    s.create_pipeline_run(&run("q2", 3), &one).await.unwrap();
    let (p, _) = s.lease_stage_run("w1", 5, 100).await.unwrap().unwrap();
    assert_eq!(p.run_id, "q1");
    assert!(s.lease_stage_run("w2", 5, 100).await.unwrap().is_none(), "q2 shares q1's workspace");
    s.finish_stage_run("q1", "a", Some("w1"), &ok(SUCCEEDED, 6)).await.unwrap();
    let (p, _) = s.lease_stage_run("w2", 7, 100).await.unwrap().unwrap();
    assert_eq!(p.run_id, "q2");
});
