//! One suite, every engine: each test runs on SQLite and on PostgreSQL.

use orchard_store::query::{Attribute, Clause, Comparator, Field, OrderBy, Query, Value, ViewType};
use orchard_store::{on_both, Metric, NewLoggedModel, NewRun, RunUpdate, Store, StoreError, Tag};

async fn experiment(store: &Store, name: &str) -> i64 {
    store
        .create_experiment(name, |id| format!("mlflow-artifacts:/{id}"), &[])
        .await
        .unwrap()
        .parse()
        .unwrap()
}

async fn run(store: &Store, exp: i64, id: &str, start: i64) -> String {
    store
        .create_run(&NewRun {
            run_id: id.into(),
            experiment_id: exp,
            user_id: "me".into(),
            run_name: format!("name-{id}"),
            status: "RUNNING".into(),
            start_time: Some(start),
            artifact_uri: format!("mlflow-artifacts:/{exp}/{id}/artifacts"),
            tags: vec![Tag::new("mlflow.runName", format!("name-{id}"))],
        })
        .await
        .unwrap();
    id.to_string()
}

fn q(exp: i64, clauses: Vec<Clause>, order_by: Vec<OrderBy>) -> Query {
    Query {
        experiment_ids: vec![exp],
        clauses,
        order_by,
        view: ViewType::ActiveOnly,
        offset: 0,
        limit: 100,
        ..Query::default()
    }
}

/// Experiments whose name is `cmp` `pattern`, ten at most.
fn names_matching(cmp: Comparator, pattern: &str) -> Query {
    Query {
        clauses: vec![Clause {
            field: Field::Attribute(Attribute::Name),
            comparator: cmp,
            value: Value::Str(pattern.into()),
        }],
        limit: 10,
        ..Default::default()
    }
}

fn ids(runs: &[orchard_store::Run]) -> Vec<&str> {
    runs.iter().map(|r| r.info.run_id.as_str()).collect()
}

on_both!(default_experiment_and_reopen, |db| {
    db.store
        .ensure_default_experiment("mlflow-artifacts:/0")
        .await
        .unwrap();
    db.store
        .ensure_default_experiment("elsewhere/0")
        .await
        .unwrap();
    let e = db.store.get_experiment(0).await.unwrap().unwrap();
    assert_eq!(
        (e.name.as_str(), e.artifact_location.as_str()),
        ("Default", "mlflow-artifacts:/0")
    );
    // Opening again applies no migration twice and keeps the data.
    let again = Store::open(&db.uri).await.unwrap();
    assert!(again.get_experiment(0).await.unwrap().is_some());
    // New ids never collide with the explicit 0.
    assert_eq!(experiment(&db.store, "first").await, 1);
});

on_both!(experiments_lifecycle, |db| {
    let s = &db.store;
    let id = s
        .create_experiment(
            "iris",
            |id| format!("file:///a/{id}"),
            &[Tag::new("team", "ml")],
        )
        .await
        .unwrap();
    let e = s.get_experiment_by_name("iris").await.unwrap().unwrap();
    assert_eq!(e.experiment_id, id);
    assert_eq!(e.artifact_location, format!("file:///a/{id}"));
    assert_eq!(e.tags, vec![Tag::new("team", "ml")]);
    assert!(matches!(
        s.create_experiment("iris", |_| String::new(), &[]).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let n: i64 = id.parse().unwrap();
    let other = experiment(s, "other").await;
    assert!(matches!(
        s.rename_experiment(other, "iris").await,
        Err(StoreError::AlreadyExists(_))
    ));
    s.rename_experiment(n, "iris2").await.unwrap();
    let r = run(s, n, "r1", 1).await;
    s.set_experiment_deleted(n, true).await.unwrap();
    assert_eq!(
        s.get_run_info(&r).await.unwrap().unwrap().lifecycle_stage,
        "deleted"
    );
    s.set_experiment_deleted(n, false).await.unwrap();
    assert_eq!(
        s.get_run_info(&r).await.unwrap().unwrap().lifecycle_stage,
        "active"
    );
    s.set_experiment_tag(n, &Tag::new("team", "ops"))
        .await
        .unwrap();
    assert_eq!(
        s.get_experiment(n).await.unwrap().unwrap().tags,
        vec![Tag::new("team", "ops")]
    );
    assert!(s.delete_experiment_tag(n, "team").await.unwrap());
    assert!(!s.delete_experiment_tag(n, "team").await.unwrap());

    let by_name = names_matching(Comparator::Like, "iris%");
    let found = s.search_experiments(&by_name).await.unwrap();
    assert_eq!(
        found.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["iris2"]
    );
    // LIKE is case-sensitive on both engines; ILIKE is not.
    let upper = names_matching(Comparator::Like, "IRIS%");
    assert!(s.search_experiments(&upper).await.unwrap().is_empty());
    let ilike = names_matching(Comparator::ILike, "IRIS%");
    assert_eq!(s.search_experiments(&ilike).await.unwrap().len(), 1);
});

on_both!(logging_latest_values_and_special_floats, |db| {
    let s = &db.store;
    let exp = experiment(s, "e").await;
    let r = run(s, exp, "r1", 1).await;
    let m = |k: &str, v: f64, ts: i64, step: i64| Metric::new(k, v, ts, step);
    s.log_batch(
        &r,
        &[
            m("loss", 3.0, 10, 0),
            m("loss", 2.0, 5, 1),
            m("loss", 9.0, 1, 0),
        ],
        &[],
        &[],
    )
    .await
    .unwrap();
    // Highest step wins even when logged earlier in time.
    s.log_batch(
        &r,
        &[
            m("nan", f64::NAN, 1, 0),
            m("inf", f64::INFINITY, 1, 0),
            m("ninf", f64::NEG_INFINITY, 1, 0),
        ],
        &[],
        &[],
    )
    .await
    .unwrap();
    let got = s.get_run(&r).await.unwrap().unwrap();
    let latest = |k: &str| got.metrics.iter().find(|x| x.key == k).unwrap().clone();
    assert_eq!((latest("loss").value, latest("loss").step), (2.0, 1));
    assert!(latest("nan").value.is_nan());
    assert_eq!(latest("inf").value, f64::INFINITY);
    assert_eq!(latest("ninf").value, f64::NEG_INFINITY);
    let hist = s.metric_history(&r, "loss", 0, 100).await.unwrap();
    assert_eq!(
        hist.iter()
            .map(|p| (p.step, p.timestamp))
            .collect::<Vec<_>>(),
        vec![(0, 1), (0, 10), (1, 5)]
    );
    assert_eq!(
        s.metric_history(&r, "loss", 1, 1).await.unwrap()[0].timestamp,
        10
    );
    // Logging the same point twice keeps one.
    s.log_batch(&r, &[m("loss", 2.0, 5, 1)], &[], &[])
        .await
        .unwrap();
    assert_eq!(s.metric_history(&r, "loss", 0, 100).await.unwrap().len(), 3);
});

on_both!(params_are_write_once_and_batches_atomic, |db| {
    let s = &db.store;
    let exp = experiment(s, "e").await;
    let r = run(s, exp, "r1", 1).await;
    s.log_batch(&r, &[], &[Tag::new("lr", "0.1")], &[])
        .await
        .unwrap();
    s.log_batch(&r, &[], &[Tag::new("lr", "0.1")], &[])
        .await
        .unwrap();
    let err = s
        .log_batch(
            &r,
            &[Metric::new("acc", 1.0, 1, 0)],
            &[Tag::new("lr", "0.2")],
            &[Tag::new("t", "v")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ParamConflict { ref old, ref new, .. } if old == "0.1" && new == "0.2")
    );
    // Nothing of the refused batch was kept.
    let got = s.get_run(&r).await.unwrap().unwrap();
    assert!(got.metrics.is_empty());
    assert!(!got.tags.iter().any(|t| t.key == "t"));
    // Deleted runs refuse writes.
    s.set_run_deleted(&r, true).await.unwrap();
    assert!(matches!(
        s.log_batch(&r, &[], &[], &[Tag::new("a", "b")]).await,
        Err(StoreError::InactiveRun { .. })
    ));
    assert!(matches!(
        s.log_batch("nope", &[], &[], &[]).await,
        Err(StoreError::NotFound(_))
    ));
});

on_both!(run_updates_and_names, |db| {
    let s = &db.store;
    let exp = experiment(s, "e").await;
    let r = run(s, exp, "r1", 1).await;
    let info = s
        .update_run(
            &r,
            &RunUpdate {
                status: Some("FINISHED".into()),
                end_time: Some(9),
                run_name: Some("renamed".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (info.status.as_str(), info.end_time, info.run_name.as_str()),
        ("FINISHED", Some(9), "renamed")
    );
    let got = s.get_run(&r).await.unwrap().unwrap();
    assert!(got.tags.contains(&Tag::new("mlflow.runName", "renamed")));
    // Setting the tag renames the run too.
    s.log_batch(&r, &[], &[], &[Tag::new("mlflow.runName", "again")])
        .await
        .unwrap();
    assert_eq!(s.get_run_info(&r).await.unwrap().unwrap().run_name, "again");
    assert!(s.delete_run_tag(&r, "mlflow.runName").await.unwrap());
    assert!(!s.delete_run_tag(&r, "mlflow.runName").await.unwrap());
});

on_both!(search_runs_in_sql, |db| {
    let s = &db.store;
    let exp = experiment(s, "e").await;
    let a = run(s, exp, "a", 100).await;
    let b = run(s, exp, "b", 200).await;
    let c = run(s, exp, "c", 300).await;
    for (r, acc, model) in [(&a, 0.9, "gbt"), (&b, 0.5, "linear"), (&c, f64::NAN, "GBT-large")] {
        let tags = if r == &a { vec![Tag::new("team", "x")] } else { vec![] };
        s.log_batch(r, &[Metric::new("acc", acc, 1, 0)], &[Tag::new("model", model)], &tags)
            .await
            .unwrap();
    }

    let clause = |field, comparator, value| Clause {
        field,
        comparator,
        value,
    };
    let metric = |k: &str| Field::Metric(k.into());
    let param = |k: &str| Field::Param(k.into());
    let attribute = Field::Attribute;
    // The runs of `exp` that pass `clauses`, and all of them in the order of `field`.
    let find = async |clauses: Vec<Clause>| s.search_runs(&q(exp, clauses, vec![])).await.unwrap();
    let sorted = async |field: Field, ascending: bool| {
        s.search_runs(&q(exp, vec![], vec![OrderBy { field, ascending }]))
            .await
            .unwrap()
    };

    // Default order: newest first.
    assert_eq!(
        ids(&s.search_runs(&q(exp, vec![], vec![])).await.unwrap()),
        vec!["c", "b", "a"]
    );
    let hits = find(vec![clause(metric("acc"), Comparator::Gt, Value::Num(0.6))]).await;
    assert_eq!(ids(&hits), vec!["a"]);
    // NaN satisfies no comparison but !=.
    let ne = find(vec![clause(metric("acc"), Comparator::Ne, Value::Num(0.9))]).await;
    assert_eq!(ids(&ne), vec!["c", "b"]);
    let like = find(vec![clause(param("model"), Comparator::Like, Value::Str("gbt%".into()))]).await;
    assert_eq!(ids(&like), vec!["a"]);
    let ilike = find(vec![clause(param("model"), Comparator::ILike, Value::Str("gbt%".into()))]).await;
    assert_eq!(ids(&ilike), vec!["c", "a"]);
    let both = find(vec![
        clause(metric("acc"), Comparator::Ge, Value::Num(0.5)),
        clause(param("model"), Comparator::Ne, Value::Str("gbt".into())),
    ])
    .await;
    assert_eq!(ids(&both), vec!["b"]);
    let no_team = find(vec![clause(Field::Tag("team".into()), Comparator::IsNull, Value::None)]).await;
    assert_eq!(ids(&no_team), vec!["c", "b"]);
    let a_or_c = Value::List(vec!["a".into(), "c".into()]);
    let in_list = find(vec![clause(attribute(Attribute::RunId), Comparator::In, a_or_c)]).await;
    assert_eq!(ids(&in_list), vec!["c", "a"]);
    let by_time = find(vec![clause(attribute(Attribute::StartTime), Comparator::Lt, Value::Num(250.0))]).await;
    assert_eq!(ids(&by_time), vec!["b", "a"]);
    let name_b = Value::Str("name-b".into());
    let by_name = find(vec![clause(attribute(Attribute::RunName), Comparator::Eq, name_b)]).await;
    assert_eq!(ids(&by_name), vec!["b"]);

    // Ordering by a metric: real values first (in the asked direction), then NaN, then runs without it.
    let d = run(s, exp, "d", 400).await;
    let asc = sorted(metric("acc"), true).await;
    assert_eq!(ids(&asc), vec!["b", "a", "c", d.as_str()]);
    let desc = sorted(metric("acc"), false).await;
    assert_eq!(ids(&desc), vec!["a", "b", "c", "d"]);
    let by_param = sorted(param("model"), true).await;
    assert_eq!(ids(&by_param), vec!["c", "a", "b", "d"]);

    // Paging and view types.
    let mut page = q(exp, vec![], vec![]);
    page.limit = 2;
    page.offset = 2;
    assert_eq!(ids(&s.search_runs(&page).await.unwrap()), vec!["b", "a"]);
    s.set_run_deleted(&b, true).await.unwrap();
    assert_eq!(
        s.search_runs(&q(exp, vec![], vec![])).await.unwrap().len(),
        3
    );
    let mut deleted = q(exp, vec![], vec![]);
    deleted.view = ViewType::DeletedOnly;
    assert_eq!(ids(&s.search_runs(&deleted).await.unwrap()), vec!["b"]);
    deleted.view = ViewType::All;
    assert_eq!(s.search_runs(&deleted).await.unwrap().len(), 4);
});

on_both!(inputs_outputs_and_logged_models, |db| {
    let s = &db.store;
    let exp = experiment(s, "e").await;
    let r = run(s, exp, "r1", 1).await;
    let ds = orchard_store::DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "training")],
        dataset: orchard_store::Dataset {
            name: "iris".into(),
            digest: "abc".into(),
            source_type: "local".into(),
            source: "{}".into(),
            schema: Some("{}".into()),
            profile: None,
        },
    };
    s.log_inputs(&r, std::slice::from_ref(&ds), &["m-1".into()])
        .await
        .unwrap();
    s.log_inputs(&r, std::slice::from_ref(&ds), &[])
        .await
        .unwrap();
    let model = s
        .create_logged_model(&NewLoggedModel {
            model_id: "m-abc".into(),
            experiment_id: exp,
            name: "model".into(),
            artifact_uri: format!("mlflow-artifacts:/{exp}/models/m-abc/artifacts"),
            status: "LOGGED_MODEL_PENDING".into(),
            model_type: None,
            source_run_id: Some(r.clone()),
            tags: vec![Tag::new("k", "v")],
            params: vec![Tag::new("p", "1")],
        })
        .await
        .unwrap();
    assert_eq!(model.params, vec![Tag::new("p", "1")]);
    s.log_outputs(
        &r,
        &[orchard_store::ModelOutput {
            model_id: "m-abc".into(),
            step: 3,
        }],
    )
    .await
    .unwrap();
    let mut metric = Metric::new("acc", 0.7, 1, 0);
    metric.model_id = Some("m-abc".into());
    s.log_batch(&r, &[metric], &[], &[]).await.unwrap();
    let got = s.get_run(&r).await.unwrap().unwrap();
    assert_eq!(got.dataset_inputs, vec![ds]);
    assert_eq!(got.model_inputs, vec!["m-1".to_string()]);
    assert_eq!(got.model_outputs[0].step, 3);
    s.set_logged_model_status("m-abc", "LOGGED_MODEL_READY")
        .await
        .unwrap();
    s.set_logged_model_tags("m-abc", &[Tag::new("k", "w")])
        .await
        .unwrap();
    let m = s.get_logged_model("m-abc").await.unwrap().unwrap();
    assert_eq!(
        (m.status.as_str(), m.tags[0].value.as_str(), m.metrics.len()),
        ("LOGGED_MODEL_READY", "w", 1)
    );
    let by_run = Query {
        experiment_ids: vec![exp],
        clauses: vec![Clause {
            field: Field::Attribute(Attribute::SourceRunId),
            comparator: Comparator::Eq,
            value: Value::Str(r.clone()),
        }],
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.search_logged_models(&by_run).await.unwrap().len(), 1);
    s.delete_logged_model("m-abc").await.unwrap();
    assert!(s.get_logged_model("m-abc").await.unwrap().is_none());
    assert!(s.search_logged_models(&by_run).await.unwrap().is_empty());
});

on_both!(concurrent_writers_do_not_collide, |db| {
    let s = db.store.clone();
    let exp = experiment(&s, "e").await;
    let r = run(&s, exp, "r1", 1).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                s.log_batch(
                    &r,
                    &[Metric::new("m", (t * 100 + i) as f64, i, t * 100 + i)],
                    &[],
                    &[],
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.metric_history(&r, "m", 0, 1000).await.unwrap().len(), 200);
    let latest = s.get_run(&r).await.unwrap().unwrap().metrics[0].clone();
    assert_eq!(latest.step, 724);
});

on_both!(charts_read_from_tiles_keep_every_spike, |db| {
    let s = &db.store;
    let exp = experiment(s, "charts").await;
    let long = run(s, exp, "c0ffee00000000000000000000000001", 1).await;
    let short = run(s, exp, "c0ffee00000000000000000000000002", 1).await;
    // 20,000 steps logged in batches of 700 (crossing the levels' thresholds as it grows), a spike up and down
    // at steps no tile boundary favours, a NaN and an infinity that charts must skip. The first 10,500 are
    // folded into the tiles; the rest may still wait in the queue (the log writer settles on its own clock).
    let value = |step: i64| if step == 12_345 { 50.0 } else if step == 7_777 { -50.0 } else { ((step % 97) as f64).sin() };
    let mut all: Vec<(i64, f64)> = Vec::new();
    for from in (0..20_000i64).step_by(700) {
        let batch: Vec<Metric> = (from..(from + 700).min(20_000)).map(|st| Metric::new("loss", value(st), 1_000 + st, st)).collect();
        all.extend(batch.iter().map(|m| (m.step, m.value)));
        s.log_batch(&long, &batch, &[], &[]).await.unwrap();
        if from == 9_800 {
            s.settle_metric_tiles().await.unwrap();
        }
    }
    s.log_batch(&long, &[Metric::new("loss", f64::NAN, 5, 20_001), Metric::new("loss", f64::INFINITY, 5, 20_002)], &[], &[])
        .await
        .unwrap();
    s.log_batch(&short, &[Metric::new("loss", 1.0, 1, 0), Metric::new("loss", 2.0, 2, 3)], &[], &[]).await.unwrap();

    let queued = charts_of_the_long_run(s, &long, &short, &all).await;
    let folded = s.settle_metric_tiles().await.unwrap();
    assert_eq!(s.settle_metric_tiles().await.unwrap(), 0, "a settle empties the queue");
    let settled = charts_of_the_long_run(s, &long, &short, &all).await;
    assert_eq!(queued, settled, "charts read the queued points as if they were in the tiles ({folded} were folded)");
});

/// The charts of the test above, each checked against the points logged; returned to compare two states.
async fn charts_of_the_long_run(s: &Store, long: &str, short: &str, all: &[(i64, f64)]) -> Vec<orchard_store::ChartSeries> {
    let (long, short) = (long.to_string(), short.to_string());
    let value = |step: i64| if step == 12_345 { 50.0 } else if step == 7_777 { -50.0 } else { ((step % 97) as f64).sin() };
    let ids = vec![long.clone(), short.clone(), "c0ffee000000000000000000000000ff".to_string()];
    let charts = s.metric_chart(&ids, "loss", None, None, 500).await.unwrap();
    assert_eq!(charts.len(), 3);
    let (l, sh, none) = (&charts[0], &charts[1], &charts[2]);
    assert_eq!(l.total, 20_000, "every finite point is counted, the NaN and the infinity are not");
    assert!(l.points.len() <= 4 * 501 && l.points.len() > 500, "about four points a column: {}", l.points.len());
    assert!(l.points.contains(&(12_345, 50.0)) && l.points.contains(&(7_777, -50.0)), "the spikes are kept");
    assert_eq!(l.points.first(), Some(&(0, value(0))));
    assert_eq!(l.points.last(), Some(&(19_999, value(19_999))));
    assert!(l.points.windows(2).all(|w| w[0].0 <= w[1].0), "in step order");
    for p in &l.points {
        assert!(all.contains(p), "{p:?} was never logged");
    }
    // (Bucket by bucket exactness against every point is the property test in src/metric_tiles.rs.)
    assert_eq!((sh.points.clone(), sh.total), (vec![(0, 1.0), (3, 2.0)], 2), "a short history comes whole");
    assert!(none.points.is_empty() && none.total == 0);
    let mut seen = charts.clone();

    // A zoomed range: only points inside it, counted exactly; each column's extremes match the raw points'.
    let zoom = s.metric_chart(&[long.clone()], "loss", Some(7_000), Some(13_000), 300).await.unwrap();
    let inside: Vec<(i64, f64)> = all.iter().copied().filter(|p| p.0 >= 7_000 && p.0 <= 13_000).collect();
    assert_eq!(zoom[0].total as usize, inside.len());
    assert_eq!(zoom[0].points.first(), inside.first());
    assert_eq!(zoom[0].points.last(), inside.last());
    assert!(zoom[0].points.contains(&(12_345, 50.0)) && zoom[0].points.contains(&(7_777, -50.0)));
    seen.extend(zoom);
    // A range past the start of the data and inside its end (read whole tiles on one side, finer on the other).
    for (from, to) in [(Some(-500), Some(13_000)), (Some(6_999), None), (None, Some(12_345))] {
        let part = s.metric_chart(&[long.clone()], "loss", from, to, 300).await.unwrap();
        let inside: Vec<(i64, f64)> =
            all.iter().copied().filter(|p| p.0 >= from.unwrap_or(i64::MIN) && p.0 <= to.unwrap_or(i64::MAX)).collect();
        assert_eq!(part[0].total as usize, inside.len(), "{from:?}..{to:?}");
        assert_eq!((part[0].points.first(), part[0].points.last()), (inside.first(), inside.last()), "{from:?}..{to:?}");
        assert!(part[0].points.contains(&(12_345, 50.0)) && part[0].points.iter().all(|p| inside.contains(p)));
        seen.extend(part);
    }
    // A range narrower than any whole tile, at one column: its four points.
    let tiny = s.metric_chart(&[long.clone()], "loss", Some(1), Some(4), 1).await.unwrap();
    assert_eq!(tiny[0].points, all[1..5].to_vec());
    // Narrow enough for every point: the points themselves.
    let close = s.metric_chart(&[long.clone()], "loss", Some(100), Some(199), 400).await.unwrap();
    assert_eq!(close[0].points, all[100..200].to_vec());
    seen.extend(tiny.into_iter().chain(close));
    seen
}
