//! Pipeline runs and their stage runs, the queue workers lease stage runs from, and cron schedules.
//!
//! A stage run is leased by one worker at a time: the lease is a deadline (`lease_until_ms`) the worker
//! pushes forward with heartbeats. A worker that dies stops renewing it, and once it has passed the stage run
//! can be leased again. Leasing is one statement: on PostgreSQL the candidate row is locked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers pick different rows without waiting on each other; SQLite
//! has one writer at a time, so the same `UPDATE … RETURNING` is atomic there by construction.
//!
//! Three small traits, each implemented by the [`Store`](crate::Store): [`PipelineRuns`] (the record),
//! [`StageQueue`] (leases and heartbeats) and [`Schedules`] (cron); callers name the one they need.

mod model;
mod queue;
mod runs;
mod schedules;
mod transitions;

pub use model::{NewStageRun, PipelineRun, Schedule, StageEvent, StageResult, StageRun};
pub use model::{BLOCKED, FAILED, PENDING, QUEUED, RESTORED, RUNNING, SUCCEEDED, UNCHANGED};
pub use queue::StageQueue;
pub use runs::PipelineRuns;
pub use schedules::Schedules;
