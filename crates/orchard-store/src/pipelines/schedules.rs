//! Cron schedules: `orchard server` queues a pipeline run when one falls due.

use std::future::Future;

use crate::error::{Result, StoreError};
use crate::sql::{exec, statement};
use crate::Store;

use super::model::*;

/// Cron schedules: `orchard server` queues a pipeline run when one falls due.
pub trait Schedules {
    fn put_schedule(&self, s: &Schedule) -> impl Future<Output = Result<()>> + Send;
    fn list_schedules(&self) -> impl Future<Output = Result<Vec<Schedule>>> + Send;
    fn delete_schedule(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn advance_schedule(&self, name: &str, due_ms: i64, next_ms: i64) -> impl Future<Output = Result<bool>> + Send;
}

impl Schedules for Store {
    async fn put_schedule(&self, s: &Schedule) -> Result<()> {
        self.write(async |tx| {
            exec(&mut **tx, "DELETE FROM pipeline_schedules WHERE name = $1", &[(&s.name).into()]).await?;
            exec(
                &mut **tx,
                "INSERT INTO pipeline_schedules (name, cron, project, targets, overrides, enabled, next_ms, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    (&s.name).into(),
                    (&s.cron).into(),
                    (&s.project).into(),
                    list_to_json(&s.targets).into(),
                    list_to_json(&s.overrides).into(),
                    s.enabled.into(),
                    s.next_ms.into(),
                    s.created_ms.into(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        let all = "SELECT * FROM pipeline_schedules ORDER BY name";
        let rows = statement(all, &[]).fetch_all(self.reader()).await?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn delete_schedule(&self, name: &str) -> Result<()> {
        if exec(self.writer(), "DELETE FROM pipeline_schedules WHERE name = $1", &[name.into()]).await? == 0 {
            return Err(StoreError::NotFound(format!("schedule '{name}'")));
        }
        Ok(())
    }

    async fn advance_schedule(&self, name: &str, due_ms: i64, next_ms: i64) -> Result<bool> {
        let text = "UPDATE pipeline_schedules SET next_ms = $1 WHERE name = $2 AND next_ms = $3";
        Ok(exec(self.writer(), text, &[next_ms.into(), name.into(), due_ms.into()]).await? == 1)
    }
}
