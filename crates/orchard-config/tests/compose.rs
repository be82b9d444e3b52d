//! The library API on the interop corpus (tests/interop/hydra_corpus), without Python.

use std::path::PathBuf;

use orchard_config::{Config, ConfigError, Node};

fn corpus(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop/hydra_corpus")
        .join(case)
}

#[test]
fn compose_and_get_resolved_values() {
    let cfg = Config::compose(
        &corpus("app"),
        "config",
        &["params.learning_rate=0.02".into(), "db=postgresql".into()],
    )
    .unwrap();
    assert_eq!(cfg.get("params.learning_rate").unwrap(), Node::Float(0.02));
    assert_eq!(
        cfg.get("params.run_name").unwrap(),
        Node::Str("lr_0.02_ep10".into())
    );
    assert_eq!(cfg.get("db.port").unwrap(), Node::Int(5432));
    assert_eq!(
        cfg.get("server.db.file").unwrap(),
        Node::Str("server.db".into())
    );
    // Nested group configs land under their parent's package; the primary's own keys come last.
    let keys: Vec<&String> = cfg.tree.as_map().unwrap().keys().collect();
    assert_eq!(keys, ["db", "server", "model", "params", "data"]);
    assert!(cfg.to_yaml().starts_with("db:\n  driver: postgresql\n"));
}

#[test]
fn errors_are_typed_and_name_what_failed() {
    let err = Config::compose(&corpus("app"), "config", &["db=oracle".into()]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::MissingConfig { name, options, .. } if name == "db/oracle" && options == &["mysql", "postgresql"])
    );
    let err = Config::compose(&corpus("app"), "nope", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::PrimaryNotFound { .. }));
    let err = Config::compose(
        &corpus("app"),
        "config",
        &["params.learning_rate=[1,".into()],
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Override(e) if e.column == 25),
        "{err}"
    );
    let cfg = Config::compose(&corpus("types"), "config", &[]).unwrap();
    assert!(cfg.get("must_set").is_ok_and(|n| n == Node::Missing));
    assert!(cfg.get("no.such.key").is_err());
}

#[test]
fn sweeps_compose_one_config_per_job() {
    let jobs = orchard_config::sweep::sweep(
        &corpus("app"),
        "config",
        &["db=glob(*)".into(), "params.epochs=1,2".into()],
    )
    .unwrap();
    let got: Vec<(String, Node)> = jobs
        .iter()
        .map(|j| {
            (
                j.config.get("db.driver").map(|n| format!("{n:?}")).unwrap(),
                j.config.get("params.epochs").unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], ("Str(\"mysql\")".to_string(), Node::Int(1)));
    assert_eq!(got[3], ("Str(\"postgresql\")".to_string(), Node::Int(2)));
}
