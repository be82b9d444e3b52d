//! What `orchard pipeline runs|logs|schedule list` print: the recorded runs as a table, a run's stage output,
//! the schedules — as text for a person and as JSON for a script. Kept apart from the commands so that the
//! wording is tested without a terminal.

use orchard_store::pipelines::{PipelineRun, Schedule, StageRun};
use serde_json::{json, Value};

use crate::history::settled_ok;

/// A time in UTC as `YYYY-MM-DD HH:MM:SS` (`-` when there is none).
pub fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// How long something took (`running` while it has no end yet).
pub fn took(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{:.1}s", (e - s) as f64 / 1000.0),
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

/// ` with a=1 b=2` after a run's description, or nothing without overrides.
pub fn overrides_note(overrides: &[String]) -> String {
    if overrides.is_empty() {
        String::new()
    } else {
        format!(" with {}", overrides.join(" "))
    }
}

/// `orchard pipeline runs`: one line per run, newest first.
pub fn runs_text(rows: &[(PipelineRun, Vec<StageRun>)]) -> String {
    if rows.is_empty() {
        return "No pipeline runs recorded yet (`orchard repro` records one).\n".into();
    }
    let mut out = format!("{:<10} {:<10} {:<8} {:<20} {:>9}  OVERRIDES\n", "RUN", "STATUS", "STAGES", "STARTED", "TOOK");
    for (r, stages) in rows {
        let id = &r.run_id[..8.min(r.run_id.len())];
        let count = format!("{}/{}", settled_ok(stages), stages.len());
        let started = when(r.start_ms.or(Some(r.created_ms)));
        let took = took(r.start_ms, r.end_ms);
        out += &format!("{id:<10} {:<10} {count:<8} {started:<20} {took:>9}  {}\n", r.status, r.overrides.join(" "));
    }
    out
}

/// `orchard pipeline runs --json`: each run with a summary of its stage runs (their output left out).
pub fn runs_json(rows: &[(PipelineRun, Vec<StageRun>)]) -> Value {
    let summary = |s: &StageRun| {
        json!({ "stage": s.stage, "status": s.status, "attempts": s.attempts, "exit_code": s.exit_code,
            "start_ms": s.start_ms, "end_ms": s.end_ms, "worker": s.worker,
            "tracking_run_id": s.tracking_run_id, "error": s.error })
    };
    rows.iter()
        .map(|(r, stages)| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["stages"] = stages.iter().map(summary).collect();
            v
        })
        .collect()
}

/// `orchard pipeline logs`: the run, then each stage's status and what it printed.
pub fn logs_text(run: &PipelineRun, stages: &[StageRun]) -> String {
    let mut out = format!("pipeline run {}  {}  {}\n", run.run_id, run.status, overrides_note(&run.overrides).trim());
    for s in stages {
        let code = s.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default();
        let by = s.worker.as_deref().map(|w| format!(", worker {w}")).unwrap_or_default();
        out += &format!("\n== {} — {}{code}{by}, {}\n", s.stage, s.status, took(s.start_ms, s.end_ms));
        if let Some(error) = s.error.as_deref().filter(|e| !e.is_empty()) {
            out += &format!("error: {error}\n");
        }
        for (label, text) in [("stdout", &s.stdout), ("stderr", &s.stderr)] {
            if !text.is_empty() {
                out += &format!("-- {label} --\n{}\n", text.trim_end());
            }
        }
    }
    out
}

/// `orchard pipeline schedule list`.
pub fn schedules_text(all: &[Schedule]) -> String {
    if all.is_empty() {
        return "No schedules.\n".into();
    }
    let mut out = format!("{:<16} {:<16} {:<20} PROJECT\n", "NAME", "CRON", "NEXT (UTC)");
    for s in all {
        let args: Vec<&str> = s.targets.iter().chain(&s.overrides).map(String::as_str).collect();
        out += &format!("{:<16} {:<16} {:<20} {} {}\n", s.name, s.cron, when(Some(s.next_ms)), s.project, args.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> PipelineRun {
        PipelineRun {
            run_id: "0123456789abcdef".into(),
            project: "/p".into(),
            targets: vec![],
            overrides: vec!["train.lr=0.1".into()],
            options: "{}".into(),
            status: "FAILED".into(),
            tracking_run_id: None,
            schedule: None,
            created_ms: 1_796_150_568_000,
            start_ms: Some(1_796_150_568_000),
            end_ms: Some(1_796_150_570_500),
        }
    }

    fn stage(name: &str, status: &str) -> StageRun {
        StageRun {
            run_id: "0123456789abcdef".into(),
            stage: name.into(),
            position: 0,
            status: status.into(),
            attempts: 1,
            exit_code: None,
            error: None,
            start_ms: Some(0),
            end_ms: Some(1500),
            stdout: String::new(),
            stderr: String::new(),
            tracking_run_id: None,
            worker: None,
            lease_until_ms: None,
        }
    }

    #[test]
    fn times_read_as_utc_and_durations_in_seconds() {
        assert_eq!(when(Some(1_796_150_568_304)), "2026-12-01 18:42:48");
        assert_eq!(when(None), "-");
        assert_eq!(took(Some(0), Some(2500)), "2.5s");
        assert_eq!(took(Some(0), None), "running");
    }

    #[test]
    fn runs_table_counts_the_stages_that_reached_their_goal() {
        let text = runs_text(&[(run(), vec![stage("a", "SUCCEEDED"), stage("b", "FAILED")])]);
        let line = text.lines().nth(1).unwrap();
        assert!(line.starts_with("01234567   FAILED     1/2"), "{line}");
        assert!(line.ends_with("2.5s  train.lr=0.1"), "{line}");
        assert!(runs_text(&[]).starts_with("No pipeline runs recorded yet"));
        assert_eq!(runs_json(&[(run(), vec![stage("a", "FAILED")])])[0]["stages"][0]["status"], "FAILED");
    }

    #[test]
    fn logs_show_each_stage_with_its_output_and_error() {
        let mut failed = stage("train", "FAILED");
        failed.exit_code = Some(2);
        failed.error = Some("command failed".into());
        failed.stderr = "Traceback\n".into();
        let text = logs_text(&run(), &[failed]);
        assert!(text.starts_with("pipeline run 0123456789abcdef  FAILED  with train.lr=0.1\n"), "{text}");
        assert!(text.contains("== train — FAILED, exit code 2, 1.5s\nerror: command failed\n-- stderr --\nTraceback\n"), "{text}");
        assert!(!text.contains("-- stdout --"), "{text}");
    }
}
