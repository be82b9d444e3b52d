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
