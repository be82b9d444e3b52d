//! `orchard pipeline status`: which stages changed since `dvc.lock`, and how, in `dvc status`'s words — as
//! its text and as its `--json` shape.

use serde_json::{Map, Value};

use crate::project::Project;
use crate::error::Result;

/// What changed, stage by stage.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// `dvc status --json`: stage name → its changes.
    pub json: Map<String, Value>,
    /// `dvc status`'s text ("" when everything is up to date).
    pub text: String,
    /// Frozen stages among the targets (their dependencies are not looked at).
    pub frozen: Vec<String>,
}

/// The changes of the target stages (all when none is named) and of the stages they depend on.
pub fn status(project: &Project, targets: &[String]) -> Result<Status> {
    let lock = project.lock()?;
    let mut out = Status::default();
    for i in project.plan(targets, false)? {
        let stage = &project.pipeline.stages[i];
        if stage.frozen {
            out.frozen.push(stage.name.clone());
        }
        let changes = project.changes(stage, lock.stages.get(&stage.name))?;
        if changes.is_empty() {
            continue;
        }
        out.text.push_str(&format!("{}:\n", stage.name));
        let changes: Vec<Value> = changes.iter().map(|c| c.to_json()).collect();
        for c in &changes {
            write_change(c, &mut out.text);
        }
        out.json.insert(stage.name.clone(), Value::Array(changes));
    }
    Ok(out)
}

/// `orchard pipeline dag`: the target stages (all when none is named), upstream first, each with the stages
/// it waits for — as lines `stage  <- a, b` and as JSON (`stage`, `after`, `cmd`).
pub fn dag(project: &Project, targets: &[String]) -> Result<(String, Value)> {
    let up = project.upstream()?;
    let name = |j: usize| project.pipeline.stages[j].name.as_str();
    let (mut text, mut nodes) = (String::new(), Vec::new());
    for i in project.plan(targets, false)? {
        let after: Vec<&str> = up[i].iter().map(|&j| name(j)).collect();
        match after.is_empty() {
            true => text += &format!("{}\n", name(i)),
            false => text += &format!("{}  <- {}\n", name(i), after.join(", ")),
        }
        let cmd = project.pipeline.stages[i].cmd.lines();
        nodes.push(serde_json::json!({ "stage": name(i), "after": after, "cmd": cmd }));
    }
    Ok((text, Value::Array(nodes)))
}

/// One change: a line of its own (`always changed`), or a section of paths with their states.
fn write_change(change: &Value, text: &mut String) {
    let state = |v: &Value| format!("{}:", v.as_str().unwrap_or(""));
    match change {
        Value::String(s) => text.push_str(&format!("\t{s}\n")),
        Value::Object(m) => {
            for (what, items) in m {
                text.push_str(&format!("\t{what}:\n"));
                for (path, st) in items.as_object().into_iter().flatten() {
                    match st {
                        Value::Object(keys) => {
                            text.push_str(&format!("\t\t{path}:\n"));
                            for (k, v) in keys {
                                text.push_str(&format!("\t\t\t{:<20}{k}\n", state(v)));
                            }
                        }
                        v => text.push_str(&format!("\t\t{:<20}{path}\n", state(v))),
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_dependency_reads_like_dvc_status() {
        let dir = tempfile::tempdir().unwrap();
        orchard_data::Repo::init(dir.path(), true, false).unwrap();
        std::fs::write(dir.path().join("in.txt"), "a\n").unwrap();
        std::fs::write(
            dir.path().join("dvc.yaml"),
            "stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n",
        )
        .unwrap();
        let project = Project::open(dir.path()).unwrap();
        let st = status(&project, &[]).unwrap();
        // Never run: no lock entry, so DVC reports the stage as changed, with its deps and outs.
        assert!(st.text.starts_with("copy:\n"), "{}", st.text);
        assert!(st.json.contains_key("copy"));
        assert!(st.frozen.is_empty());
        assert!(status(&project, &["nope".into()]).is_err(), "an unknown stage is an error");
    }

    #[test]
    fn the_dag_lists_stages_upstream_first_with_what_they_wait_for() {
        let dir = tempfile::tempdir().unwrap();
        orchard_data::Repo::init(dir.path(), true, false).unwrap();
        std::fs::write(
            dir.path().join("dvc.yaml"),
            "stages:\n  train:\n    cmd: cp a b\n    deps: [a]\n    outs: [b]\n  prep:\n    cmd: touch a\n    outs: [a]\n",
        )
        .unwrap();
        let (text, json) = dag(&Project::open(dir.path()).unwrap(), &[]).unwrap();
        assert_eq!(text, "prep\ntrain  <- prep\n");
        assert_eq!(json[1]["after"][0], "prep");
        assert_eq!(json[1]["cmd"][0], "cp a b");
    }
}
