//! The recorded pipeline runs read back: the newest ones with their stage runs, or one found by (the start
//! of) its id.

use std::path::Path;

use orchard_store::pipelines::{PipelineRun, PipelineRuns, StageRun};
use tokio::runtime::Handle;

use crate::{OrchestratorError, Result};

/// The store a project's pipeline runs go to when none is named: `.dvc/tmp/orchard.db` in the repository,
/// which DVC's own `.dvc/.gitignore` already keeps out of git.
pub fn store_uri(given: Option<String>, root: Option<&Path>) -> Result<String> {
    match (given, root) {
        (Some(uri), _) => Ok(uri),
        (None, Some(root)) => Ok(format!("sqlite:///{}", root.join(".dvc").join("tmp").join("orchard.db").display())),
        (None, None) => Err(OrchestratorError::Invalid("not inside a DVC repository: give --backend-store-uri".into())),
    }
}

/// The `max` newest pipeline runs, each with its stage runs.
pub fn recent(rt: &Handle, store: &impl PipelineRuns, max: i64) -> Result<Vec<(PipelineRun, Vec<StageRun>)>> {
    let runs = rt.block_on(store.list_pipeline_runs(max.max(1), None))?;
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        let stages = rt.block_on(store.get_pipeline_run(&r.run_id))?.map(|(_, s)| s).unwrap_or_default();
        out.push((r, stages));
    }
    Ok(out)
}

/// The stage runs that reached their goal (ran, restored, or were already up to date).
pub fn settled_ok(stages: &[StageRun]) -> usize {
    stages.iter().filter(|s| matches!(s.status.as_str(), "SUCCEEDED" | "RESTORED" | "UNCHANGED")).count()
}

/// One pipeline run by its id or the start of it (`latest`: the newest), with its stage runs — all, or the
/// one named.
pub fn find(rt: &Handle, store: &impl PipelineRuns, run: &str, stage: Option<&str>) -> Result<(PipelineRun, Vec<StageRun>)> {
    let prefix = if run == "latest" { None } else { Some(run) };
    let found = rt.block_on(store.list_pipeline_runs(2, prefix))?;
    let invalid = |m: String| Err(OrchestratorError::Invalid(m));
    let id = match (found.len(), prefix) {
        (0, _) => return invalid(format!("no pipeline run '{run}'")),
        (1, _) | (_, None) => found[0].run_id.clone(),
        _ => return invalid(format!("'{run}' is the start of more than one run id: give more of it")),
    };
    let Some((run, stages)) = rt.block_on(store.get_pipeline_run(&id))? else {
        return invalid("the run disappeared".into());
    };
    let stages: Vec<StageRun> = stages.into_iter().filter(|s| stage.is_none_or(|n| n == s.stage)).collect();
    if let (Some(name), true) = (stage, stages.is_empty()) {
        return invalid(format!("pipeline run {} has no stage '{name}'", run.run_id));
    }
    Ok((run, stages))
}
