//! Orchard's web UI, served by `orchard server` at `/`: server-rendered HTML (maud, escaped by construction),
//! one embedded stylesheet and one small script (keyboard navigation, MLflow's `#/` links), plus uPlot (vendored)
//! and `charts.js` on pages with charts; no JavaScript is needed for tables, links and forms. Pages read through the same
//! domain calls as the REST API (`orchard_tracking::Tracking`); nothing here knows SQL.
//!
//! - `/`: experiments (search, create, rename, delete, restore) — [`experiments`];
//! - `/experiments/{id}`: the runs table (filter, sort, columns, pages, nested runs) — [`runs`];
//! - `/runs/{id}`: a run (overview, params, metrics and their charts, tags, datasets, artifacts) — [`run_page`];
//! - `/runs/{id}/tags`, `…/tags/delete`, `…/description` (POST): a run's tags and description — [`run_edits`];
//! - `/runs/{id}?file=…`: a file's preview (images, text, tables, MLmodel) — [`previews`];
//! - `/registry`, `/registry/{name}`: registered models, a model's versions and aliases (set, move, remove) —
//!   [`registry`];
//! - `/experiments/{id}/models`, `/logged-models/{id}`: logged models, with their files — [`logged_models`];
//! - `/compare?run=…`: runs side by side, "only differences", overlaid charts — [`compare`];
//! - `/charts/series`: a chart's data, each series reduced to the chart's width keeping every spike — [`charts`];
//! - `/static/…`: the stylesheet and the script, under content-hashed names — [`assets`].
//!
//! Every page carries a Content-Security-Policy without inline script ([`layout::CSP`]); every change is a POST
//! that must come from a page of this server (checked for every route at once: [`layout::changes_from_own_pages`]).

pub mod assets;
pub mod charts;
pub mod compare;
pub mod experiments;
pub mod layout;
pub mod logged_models;
pub mod plots;
pub mod previews;
pub mod registry;
pub mod run_edits;
pub mod run_page;
pub mod runs;
mod state;

use axum::routing::{get, post};
use axum::Router;
use orchard_tracking::artifacts::Artifacts;
use orchard_tracking::Tracking;

pub use crate::state::Ui;

/// The UI's routes, ready to merge into the server's application.
pub fn router(tracking: Tracking, artifacts: Option<Artifacts>) -> Router {
    Router::new()
        .route("/", get(experiments::list))
        .route("/experiments/create", post(experiments::create))
        .route("/experiments/{id}", get(runs::table))
        .route("/experiments/{id}/rename", post(experiments::rename))
        .route("/experiments/{id}/delete", post(experiments::delete))
        .route("/experiments/{id}/restore", post(experiments::restore))
        .route("/runs/{id}", get(run_page::show))
        .route("/runs/{id}/image", get(previews::image))
        .route("/runs/{id}/tags", post(run_edits::set_tag))
        .route("/runs/{id}/tags/delete", post(run_edits::delete_tag))
        .route("/runs/{id}/description", post(run_edits::set_description))
        .route("/experiments/{id}/models", get(logged_models::list))
        .route("/logged-models/{id}", get(logged_models::show))
        .route("/logged-models/{id}/image", get(previews::model_image))
        .route("/compare", get(compare::show))
        .route("/registry", get(registry::list))
        .route("/registry/{name}", get(registry::show))
        .route("/registry/{name}/aliases", post(registry::set_alias))
        .route("/registry/{name}/aliases/delete", post(registry::delete_alias))
        .route("/charts/series", get(charts::series))
        .route("/static/{file}", get(assets::serve))
        .route_layer(axum::middleware::from_fn(layout::changes_from_own_pages))
        .with_state(Ui { tracking, artifacts })
        // HTML, CSS, scripts and chart data shrink several times over; images are left as they are. The fastest
        // level: a large chart answer compresses at ~100 MB/s instead of ~12, for a few percent more bytes.
        .layer(tower_http::compression::CompressionLayer::new().quality(tower_http::CompressionLevel::Fastest))
}
