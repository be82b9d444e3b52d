//! The model registry's storage on every engine: numbering, rename cascades, soft deletes, aliases, searches.

use orchard_store::query::{Attribute, Clause, Comparator, Field, OrderBy, Query, Value};
use orchard_store::{on_both, NewModelVersion, Store, StoreError, Tag, DELETED_STAGE};

fn version(name: &str, source: &str) -> NewModelVersion {
    NewModelVersion {
        name: name.into(),
        source: source.into(),
        storage_location: source.into(),
        run_id: Some("run1".into()),
        tags: vec![Tag::new("k", "v")],
        ..NewModelVersion::default()
    }
}

fn query(clauses: Vec<Clause>, order_by: Vec<OrderBy>) -> Query {
    Query {
        clauses,
        order_by,
        limit: 100,
        ..Query::default()
    }
}

fn versions_of(vs: &[orchard_store::ModelVersion]) -> Vec<(String, i64)> {
    vs.iter().map(|v| (v.name.clone(), v.version)).collect()
}

async fn model_with_versions(store: &Store, name: &str, n: usize) {
    store
        .create_registered_model(name, Some("desc"), &[Tag::new("team", "ml")])
        .await
        .unwrap();
    for i in 0..n {
        store
            .create_model_version(&version(name, &format!("s3://b/{name}/{i}")))
            .await
            .unwrap();
    }
}

on_both!(numbering_rename_and_delete, |db| {
    let s = &db.store;
    model_with_versions(s, "iris", 3).await;
    assert!(matches!(
        s.create_registered_model("iris", None, &[]).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let v = s.get_model_version("iris", 2).await.unwrap().unwrap();
    assert_eq!((v.current_stage.as_str(), v.status.as_str()), ("None", "READY"));
    assert_eq!(v.tags, vec![Tag::new("k", "v")]);

    // A deleted version keeps its number: the next one is 4, not 3.
    s.set_registered_model_alias("iris", "champion", 3).await.unwrap();
    s.delete_model_version("iris", 3).await.unwrap();
    assert!(s.get_model_version("iris", 3).await.unwrap().is_none());
    assert!(matches!(s.delete_model_version("iris", 3).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.get_registered_model_alias("iris", "champion").await.unwrap(), None);
    let v4 = s.create_model_version(&version("iris", "s3://b/x")).await.unwrap();
    assert_eq!(v4.version, 4);

    // Renaming carries versions, tags and aliases along.
    s.set_registered_model_alias("iris", "champion", 4).await.unwrap();
    s.set_model_version_tag("iris", 4, &Tag::new("stage", "prod")).await.unwrap();
    s.rename_registered_model("iris", "flowers").await.unwrap();
    assert!(s.get_registered_model("iris").await.unwrap().is_none());
    let m = s.get_registered_model("flowers").await.unwrap().unwrap();
    assert_eq!(m.tags, vec![Tag::new("team", "ml")]);
    assert_eq!(m.aliases, vec![("champion".to_string(), 4)]);
    let v = s.get_model_version("flowers", 4).await.unwrap().unwrap();
    assert_eq!(v.aliases, vec!["champion".to_string()]);
    assert!(v.tags.contains(&Tag::new("stage", "prod")));
    model_with_versions(s, "other", 0).await;
    assert!(matches!(
        s.rename_registered_model("flowers", "other").await,
        Err(StoreError::AlreadyExists(_))
    ));

    // Deleting the model removes everything, deleted versions too: the name starts over at 1.
    s.delete_registered_model("flowers").await.unwrap();
    assert!(s.get_registered_model("flowers").await.unwrap().is_none());
    model_with_versions(s, "flowers", 1).await;
    assert_eq!(s.get_model_version("flowers", 1).await.unwrap().unwrap().tags.len(), 1);
    assert!(s.get_model_version("flowers", 2).await.unwrap().is_none());
});

on_both!(stages_and_latest_versions, |db| {
    let s = &db.store;
    model_with_versions(s, "m", 4).await;
    s.transition_model_version_stage("m", 1, "Production", false).await.unwrap();
    s.transition_model_version_stage("m", 2, "Staging", false).await.unwrap();
    let latest = s.latest_model_versions("m", &[]).await.unwrap();
    let by_stage: Vec<(String, i64)> = latest.iter().map(|v| (v.current_stage.clone(), v.version)).collect();
    assert_eq!(
        by_stage,
        vec![("Production".into(), 1), ("Staging".into(), 2), ("None".into(), 4)]
    );
    // Archiving: version 3 takes Production, version 1 moves to Archived.
    s.transition_model_version_stage("m", 3, "Production", true).await.unwrap();
    assert_eq!(s.get_model_version("m", 1).await.unwrap().unwrap().current_stage, "Archived");
    let prod = s.latest_model_versions("m", &["Production".into()]).await.unwrap();
    assert_eq!(versions_of(&prod), vec![("m".into(), 3)]);
    assert!(matches!(
        s.transition_model_version_stage("m", 9, "Staging", false).await,
        Err(StoreError::NotFound(_))
    ));
    // A deleted version never shows as latest.
    s.delete_model_version("m", 4).await.unwrap();
    let m = s.get_registered_model("m").await.unwrap().unwrap();
    assert!(m.latest_versions.iter().all(|v| v.version != 4 && v.current_stage != DELETED_STAGE));
});

on_both!(searches_filter_order_and_page, |db| {
    let s = &db.store;
    for (name, n) in [("alpha", 2), ("beta", 3), ("gamma", 1)] {
        model_with_versions(s, name, n).await;
    }
    s.set_registered_model_tag("beta", &Tag::new("team", "cv")).await.unwrap();
    s.set_registered_model_tag("gamma", &Tag::new(orchard_store::PROMPT_TAG, "true")).await.unwrap();

    let names = |ms: Vec<orchard_store::RegisteredModel>| ms.into_iter().map(|m| m.name).collect::<Vec<_>>();
    let by_name_desc = OrderBy { field: Field::Attribute(Attribute::Name), ascending: false };
    assert_eq!(names(s.search_registered_models(&query(vec![], vec![]), true).await.unwrap()), ["alpha", "beta"]);
    assert_eq!(
        names(s.search_registered_models(&query(vec![], vec![by_name_desc]), false).await.unwrap()),
        ["gamma", "beta", "alpha"]
    );
    let team_ml = Clause { field: Field::Tag("team".into()), comparator: Comparator::Eq, value: Value::Str("ml".into()) };
    assert_eq!(names(s.search_registered_models(&query(vec![team_ml.clone()], vec![]), true).await.unwrap()), ["alpha"]);
    let like = Clause { field: Field::Attribute(Attribute::Name), comparator: Comparator::ILike, value: Value::Str("%A%".into()) };
    assert_eq!(names(s.search_registered_models(&query(vec![like], vec![]), false).await.unwrap()), ["alpha", "beta", "gamma"]);

    let by_version = |asc| OrderBy { field: Field::Attribute(Attribute::VersionNumber), ascending: asc };
    let beta = Clause { field: Field::Attribute(Attribute::Name), comparator: Comparator::Eq, value: Value::Str("beta".into()) };
    let newer = Clause { field: Field::Attribute(Attribute::VersionNumber), comparator: Comparator::Gt, value: Value::Num(1.0) };
    let got = s.search_model_versions(&query(vec![beta.clone(), newer], vec![by_version(false)]), true).await.unwrap();
    assert_eq!(versions_of(&got), vec![("beta".into(), 3), ("beta".into(), 2)]);
    let source = Clause { field: Field::Attribute(Attribute::SourcePath), comparator: Comparator::Like, value: Value::Str("s3://b/alpha/%".into()) };
    assert_eq!(s.search_model_versions(&query(vec![source], vec![]), true).await.unwrap().len(), 2);
    let run = Clause { field: Field::Attribute(Attribute::RunId), comparator: Comparator::In, value: Value::List(vec!["run1".into()]) };
    // Prompts' versions are hidden unless asked for.
    assert_eq!(s.search_model_versions(&query(vec![run.clone()], vec![]), true).await.unwrap().len(), 5);
    assert_eq!(s.search_model_versions(&query(vec![run], vec![]), false).await.unwrap().len(), 6);
    let tagged = Clause { field: Field::Tag("k".into()), comparator: Comparator::Eq, value: Value::Str("v".into()) };
    let mut page = query(vec![tagged, beta], vec![by_version(true)]);
    page.limit = 2;
    page.offset = 1;
    let got = s.search_model_versions(&page, true).await.unwrap();
    assert_eq!(versions_of(&got), vec![("beta".into(), 2), ("beta".into(), 3)]);
});

on_both!(concurrent_version_creation_numbers_densely, |db| {
    let s = db.store.clone();
    model_with_versions(&s, "c", 0).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create_model_version(&version("c", &format!("s3://b/{i}"))).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap().version);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
});
