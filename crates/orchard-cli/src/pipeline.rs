//! `orchard repro` and `orchard pipeline status|dag`: DVC-compatible pipelines (`dvc.yaml`, `dvc.lock`, the
//! run cache), with params composed from a Hydra-style `conf/` folder when there is one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use orchard_config::Config;
use orchard_pipeline::{repro_observed, Observer, Options, Outcome, Project};

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// Stages to reproduce (with their upstream stages), then Hydra overrides (`train.lr=0.02`): arguments
    /// holding `=` (or starting with `+`/`~`) are overrides. No stage: the whole pipeline.
    args: Vec<String>,
    /// Run up to N independent stages at once.
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    /// Run the stages even if nothing changed.
    #[arg(long, short = 'f')]
    force: bool,
    /// Only print what would run.
    #[arg(long)]
    dry: bool,
    /// Only the named stages, not their upstream stages.
    #[arg(long, short = 's')]
    single_item: bool,
    /// Do not restore outputs from the run cache (nor record runs in it).
    #[arg(long)]
    no_run_cache: bool,
    /// The Hydra config folder composed into params.yaml before the stages are checked (used when it
    /// exists).
    #[arg(long, default_value = "conf")]
    config_dir: PathBuf,
    /// Primary config, without `.yaml`.
    #[arg(long, default_value = "config")]
    config_name: String,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// A tracking server (http://…) to record the pipeline in: a run for the pipeline and a child run per
    /// stage, whose commands get MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_ID and MLFLOW_RUN_ID.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    tracking_uri: Option<String>,
    /// The experiment of those runs.
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", default_value = "pipelines")]
    experiment: String,
}

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Which stages changed since dvc.lock, and how (as `dvc status` reports it).
    Status(StatusArgs),
    /// The stages and what each depends on, upstream first.
    Dag(StatusArgs),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Stages to look at (default: all).
    targets: Vec<String>,
    /// Machine-readable output (`dvc status --json`'s shape for status).
    #[arg(long)]
    json: bool,
}

fn is_override(arg: &str) -> bool {
    arg.contains('=') || arg.starts_with('~') || arg.starts_with('+')
}

/// Composes `conf/` with the overrides into `params.yaml` (rewritten only when its content changes, so an
/// unchanged config leaves stages up to date).
fn write_params(root: &Path, dir: &Path, name: &str, overrides: &[String]) -> anyhow::Result<()> {
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { root.join(dir) };
    if !dir.join(format!("{name}.yaml")).is_file() {
        if !overrides.is_empty() {
            bail!("overrides given ({}) but there is no {}/{name}.yaml to compose them with", overrides.join(" "), dir.display());
        }
        return Ok(());
    }
    let cfg = Config::compose(&dir, name, overrides)?;
    let text = orchard_config::yaml::to_yaml(&cfg.resolved()?);
    let path = root.join("params.yaml");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        orchard_data::fsutil::write_atomic(&path, text.as_bytes())?;
    }
    Ok(())
}

pub fn repro_cmd(args: ReproArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let (overrides, targets): (Vec<String>, Vec<String>) = args.args.into_iter().partition(|a| is_override(a));
    let root = orchard_data::Repo::find(&cwd)?.root;
    write_params(&root, &args.config_dir, &args.config_name, &overrides).context("composing params.yaml")?;
    let project = Project::open(&root)?;
    let opts = Options {
        targets,
        jobs: args.jobs,
        force: args.force,
        dry: args.dry,
        single_item: args.single_item,
        no_run_cache: args.no_run_cache,
        env: Vec::new(),
        progress_to_stderr: args.json,
    };
    let tracker = match args.tracking_uri.as_deref().filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        Some(uri) if !opts.dry => Some(crate::pipeline_tracking::Tracker::start(uri, &args.experiment, &root).with_context(|| format!("opening a tracking run on {uri}"))?),
        _ => None,
    };
    struct Nobody;
    impl Observer for Nobody {}
    let report = match &tracker {
        Some(t) => repro_observed(&project, &opts, t)?,
        None => repro_observed(&project, &opts, &Nobody)?,
    };
    if let Some(t) = &tracker {
        t.finish(report.failed());
    }
    if args.json {
        let stages: Vec<serde_json::Value> = report
            .stages
            .iter()
            .map(|s| {
                let (state, detail) = match &s.outcome {
                    Outcome::Unchanged => ("unchanged", serde_json::Value::Null),
                    Outcome::Ran { attempts } => ("ran", serde_json::json!({ "attempts": attempts })),
                    Outcome::Restored => ("restored", serde_json::Value::Null),
                    Outcome::Due(c) => ("due", serde_json::json!(c.iter().map(|c| c.to_json()).collect::<Vec<_>>())),
                    Outcome::Failed(e) => ("failed", serde_json::json!(e)),
                    Outcome::Blocked(e) => ("blocked", serde_json::json!(e)),
                };
                serde_json::json!({ "stage": s.name, "state": state, "detail": detail, "seconds": s.seconds })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&stages)?);
    } else if report.stages.iter().all(|s| s.outcome == Outcome::Unchanged) {
        println!("Data and pipelines are up to date.");
    }
    if report.failed() {
        let failed: Vec<&str> = report
            .stages
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_) | Outcome::Blocked(_)))
            .map(|s| s.name.as_str())
            .collect();
        bail!("not reproduced: {} (run `orchard repro` again to resume)", failed.join(", "));
    }
    Ok(())
}

pub fn run(cmd: PipelineCommand) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let project = Project::open(&cwd)?;
    match cmd {
        PipelineCommand::Status(args) => {
            let lock = project.lock()?;
            let order = project.plan(&args.targets, false)?;
            let mut out = serde_json::Map::new();
            let mut text = String::new();
            for i in order {
                let stage = &project.pipeline.stages[i];
                if stage.frozen {
                    eprintln!("WARNING: stage: '{}' is frozen. Its dependencies are not going to be shown in the status output.", stage.name);
                }
                let changes = project.changes(stage, lock.stages.get(&stage.name))?;
                if changes.is_empty() {
                    continue;
                }
                text.push_str(&format!("{}:\n", stage.name));
                for c in &changes {
                    match c.to_json() {
                        serde_json::Value::String(s) => text.push_str(&format!("\t{s}\n")),
                        serde_json::Value::Object(m) => {
                            for (what, items) in m {
                                text.push_str(&format!("\t{what}:\n"));
                                for (path, st) in items.as_object().into_iter().flatten() {
                                    match st {
                                        serde_json::Value::Object(keys) => {
                                            text.push_str(&format!("\t\t{path}:\n"));
                                            for (k, v) in keys {
                                                text.push_str(&format!("\t\t\t{:<20}{k}\n", format!("{}:", v.as_str().unwrap_or(""))));
                                            }
                                        }
                                        v => text.push_str(&format!("\t\t{:<20}{path}\n", format!("{}:", v.as_str().unwrap_or("")))),
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                out.insert(stage.name.clone(), serde_json::Value::Array(changes.iter().map(|c| c.to_json()).collect()));
            }
            if args.json {
                println!("{}", serde_json::Value::Object(out));
            } else if text.is_empty() {
                println!("Data and pipelines are up to date.");
            } else {
                print!("{text}");
            }
        }
        PipelineCommand::Dag(args) => {
            let up = project.upstream()?;
            let order = project.plan(&args.targets, false)?;
            if args.json {
                let nodes: Vec<serde_json::Value> = order
                    .iter()
                    .map(|&i| {
                        let s = &project.pipeline.stages[i];
                        let deps: Vec<&str> = up[i].iter().map(|&j| project.pipeline.stages[j].name.as_str()).collect();
                        serde_json::json!({ "stage": s.name, "after": deps, "cmd": s.cmd.lines() })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&nodes)?);
            } else {
                for i in order {
                    let s = &project.pipeline.stages[i];
                    let deps: Vec<&str> = up[i].iter().map(|&j| project.pipeline.stages[j].name.as_str()).collect();
                    if deps.is_empty() {
                        println!("{}", s.name);
                    } else {
                        println!("{}  <- {}", s.name, deps.join(", "));
                    }
                }
            }
        }
    }
    Ok(())
}
