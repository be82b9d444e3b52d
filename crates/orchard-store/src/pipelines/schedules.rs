//! Cron schedules: `orchard server` queues a pipeline run when one falls due.

use std::future::Future;

use crate::error::{Result, StoreError};
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
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM pipeline_schedules WHERE name = $1").bind(&s.name).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO pipeline_schedules (name, cron, project, targets, overrides, enabled, next_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.project)
        .bind(list_to_json(&s.targets))
        .bind(list_to_json(&s.overrides))
        .bind(i64::from(s.enabled))
        .bind(s.next_ms)
        .bind(s.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        sqlx::query("SELECT * FROM pipeline_schedules ORDER BY name")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(schedule_from_row)
            .collect()
    }

    async fn delete_schedule(&self, name: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM pipeline_schedules WHERE name = $1")
            .bind(name)
            .execute(self.writer())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("schedule '{name}'")));
        }
        Ok(())
    }

    async fn advance_schedule(&self, name: &str, due_ms: i64, next_ms: i64) -> Result<bool> {
        let n = sqlx::query("UPDATE pipeline_schedules SET next_ms = $1 WHERE name = $2 AND next_ms = $3")
            .bind(next_ms)
            .bind(name)
            .bind(due_ms)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}
