//! Changes made from a run's page: its tags (set, remove) and its description (MLflow keeps it in the tag
//! `mlflow.note.content`, so the MLflow UI and client see it too). Each is a POST from the page (the router lets
//! it through only from this server's own pages: [`crate::layout::changes_from_own_pages`]), then goes back to the run.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use orchard_tracking::Result;
use serde::Deserialize;

use crate::layout::error_page;
use crate::state::Ui;

/// MLflow's tag for a run's description.
pub const DESCRIPTION_TAG: &str = "mlflow.note.content";

#[derive(Deserialize)]
pub struct TagForm {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
pub struct DescriptionForm {
    #[serde(default)]
    description: String,
}

/// Back to the run's page once the change is made; its mistake (a bad key, say) as a page.
fn done(run_id: &str, changed: Result<()>) -> Response {
    match changed {
        // The id was just accepted by the store, so it is a run id (hex) and safe in a URL.
        Ok(()) => Redirect::to(&format!("/runs/{run_id}")).into_response(),
        Err(e) => error_page(&e),
    }
}

pub async fn set_tag(State(ui): State<Ui>, Path(id): Path<String>, Form(f): Form<TagForm>) -> Response {
    done(&id, ui.tracking.set_tag(&id, f.key.trim(), &f.value).await)
}

pub async fn delete_tag(State(ui): State<Ui>, Path(id): Path<String>, Form(f): Form<TagForm>) -> Response {
    done(&id, ui.tracking.delete_tag(&id, &f.key).await)
}

pub async fn set_description(State(ui): State<Ui>, Path(id): Path<String>, Form(f): Form<DescriptionForm>) -> Response {
    done(&id, ui.tracking.set_tag(&id, DESCRIPTION_TAG, &f.description).await)
}
