//! The model registry: `/registry` lists the registered models (search by name, pages), `/registry/{name}` shows
//! one model: its description, tags, aliases and versions (each with its stage, source run, tags), where a person
//! sets, moves or removes an alias. Moving `@champion` here is what the serving gateway
//! (`/models/<name>/predict`) follows on its next request.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use orchard_tracking::registry::ModelVersion;
use orchard_tracking::{ErrorCode, TrackingError};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;

use crate::experiments::name_filter;
use crate::layout::{error_page, page, query, time, Section};
use crate::state::Ui;

/// Models per page.
const PAGE_SIZE: i64 = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

/// A model's page URL (its name, whatever it holds, as one path segment).
pub fn model_url(name: &str) -> String {
    format!("/registry/{}", utf8_percent_encode(name, NON_ALPHANUMERIC))
}

pub async fn list(State(ui): State<Ui>, Query(q): Query<ListQuery>) -> Response {
    let order = ["last_updated_timestamp DESC".to_string()];
    let found = ui.tracking.search_registered_models(&name_filter(&q.q), Some(PAGE_SIZE), &order, &q.page).await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let content = html! {
        h1 { "Models" }
        form.toolbar method="get" action="/registry" {
            input.grow type="search" name="q" value=(q.q) placeholder="Search models by name" aria-label="Search models";
            button.primary type="submit" { "Search" }
        }
        @if found.items.is_empty() {
            div.panel.empty { @if q.q.is_empty() { "No registered models yet. Register one with mlflow.register_model(…) or from a run." } @else { "No model matches." } }
        } @else {
            div.table-wrap { table.data #models {
                thead { tr { th.first { "Name" } th { "Latest version" } th { "Aliases" } th { "Last modified" } th { "Description" } } }
                tbody { @for m in &found.items {
                    tr {
                        td.first { a href=(model_url(&m.name)) { (m.name) } }
                        td.num { (m.latest_versions.iter().map(|v| v.version).max().map(|v| format!("v{v}")).unwrap_or_default()) }
                        td { @for (alias, version) in &m.aliases { span.chip { "@" (alias) " → v" (version) } " " } }
                        td { (time(Some(m.last_updated_timestamp_ms))) }
                        td.muted { (m.description.as_deref().unwrap_or("")) }
                    }
                } }
            } }
            @if let Some(token) = &found.next_page_token {
                div.pager { a.button href={ "/registry" (query(&[("q", &q.q), ("page", token)])) } { "Next page →" } }
            }
        }
    };
    page("Models", Section::Models, &[], content)
}

pub async fn show(State(ui): State<Ui>, Path(name): Path<String>) -> Response {
    let model = match ui.tracking.get_registered_model(&name).await {
        Ok(m) => m,
        Err(e) => return error_page(&e),
    };
    // MLflow's filter strings have no escapes: a name holding both quotes cannot be searched for, and its
    // versions are then read one by one from the latest.
    let versions: Vec<ModelVersion> = match version_filter(&model.name) {
        Some(filter) => match ui.tracking.search_model_versions(&filter, Some(10_000), &["version_number DESC".into()], "").await {
            Ok(p) => p.items,
            Err(e) => return error_page(&e),
        },
        None => model.latest_versions.clone(),
    };
    let action = |what: &str| format!("{}/{what}", model_url(&model.name));
    let content = html! {
        h1 { (model.name) }
        p.muted { "Created " (time(Some(model.creation_timestamp_ms))) " · last modified " (time(Some(model.last_updated_timestamp_ms))) }
        div.grid2 {
            div.panel {
                h2 { "Description" }
                @match model.description.as_deref().filter(|d| !d.is_empty()) {
                    Some(d) => { p.description { (d) } }
                    None => { p.muted { "No description." } }
                }
                h2 { "Tags" }
                @if model.tags.is_empty() { p.muted { "No tags." } } @else {
                    table.data.kv { tbody { @for t in &model.tags { tr { td { (t.key) } td { (t.value) } } } } }
                }
            }
            div.panel #aliases {
                h2 { "Aliases" }
                @if model.aliases.is_empty() { p.muted { "No aliases. The gateway serves the version @champion points at." } } @else {
                    table.data.kv { tbody { @for (alias, version) in &model.aliases {
                        tr {
                            td { span.chip { "@" (alias) } }
                            td { "version " (version) }
                            td.actions { form method="post" action=(action("aliases/delete")) {
                                input type="hidden" name="alias" value=(alias);
                                button.link type="submit" title={ "Remove @" (alias) } { "Remove" }
                            } }
                        }
                    } } }
                }
                // Setting an alias that exists moves it: MLflow's set_registered_model_alias.
                form.add-tag #set-alias method="post" action=(action("aliases")) {
                    input type="text" name="alias" placeholder="alias, e.g. champion" aria-label="Alias" required;
                    select name="version" aria-label="Version" {
                        @for v in &versions { option value=(v.version) { "version " (v.version) } }
                    }
                    button.primary type="submit" { "Set alias" }
                }
            }
        }
        div.panel {
            h2 { "Versions (" (versions.len()) ")" }
            div.table-wrap { table.data #versions {
                thead { tr { th.first { "Version" } th { "Aliases" } th { "Stage" } th { "Status" } th { "Registered" } th { "Source run" } th { "Source" } th { "Tags" } } }
                tbody { @for v in &versions {
                    tr {
                        td.first { "v" (v.version) }
                        td { @for a in &v.aliases { span.chip { "@" (a) } " " } }
                        td { (v.current_stage) }
                        td { span class={ "badge " (v.status) } { (v.status.to_lowercase().replace('_', " ")) } }
                        td { (time(Some(v.creation_timestamp_ms))) }
                        td { @if let Some(run) = v.run_id.as_deref().filter(|r| !r.is_empty()) {
                            a.mono href={ "/runs/" (utf8_percent_encode(run, NON_ALPHANUMERIC)) } { (run.get(..8).unwrap_or(run)) }
                        } }
                        td.mono title=(v.source) { (v.source) }
                        td { @for t in &v.tags { span.chip { (t.key) "=" (t.value) } " " } }
                    }
                } }
            } }
        }
    };
    let crumbs = [("Models", "/registry".to_string())];
    page(&model.name, Section::Models, &crumbs, content)
}

/// `name = '…'` for the model's versions, quoted with the quote the name does not hold.
fn version_filter(name: &str) -> Option<String> {
    match (name.contains('\''), name.contains('"')) {
        (false, _) => Some(format!("name = '{name}'")),
        (true, false) => Some(format!("name = \"{name}\"")),
        (true, true) => None,
    }
}

#[derive(Deserialize)]
pub struct AliasForm {
    alias: String,
    #[serde(default)]
    version: String,
}

fn back_to(name: &str, changed: Result<(), TrackingError>) -> Response {
    match changed {
        Ok(()) => Redirect::to(&format!("{}#aliases", model_url(name))).into_response(),
        Err(e) => error_page(&e),
    }
}

pub async fn set_alias(State(ui): State<Ui>, Path(name): Path<String>, Form(f): Form<AliasForm>) -> Response {
    back_to(&name, ui.tracking.set_registered_model_alias(&name, f.alias.trim(), &f.version).await)
}

pub async fn delete_alias(State(ui): State<Ui>, Path(name): Path<String>, Form(f): Form<AliasForm>) -> Response {
    let removed = ui.tracking.delete_registered_model_alias(&name, &f.alias).await;
    // Removing an alias that is already gone (a second click) leaves the page as it is.
    let removed = removed.or_else(|e| if e.code() == ErrorCode::ResourceDoesNotExist { Ok(()) } else { Err(e) });
    back_to(&name, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_models_url_and_version_filter_survive_any_name() {
        assert_eq!(model_url("iris classifier/v2"), "/registry/iris%20classifier%2Fv2");
        assert_eq!(version_filter("iris").as_deref(), Some("name = 'iris'"));
        assert_eq!(version_filter("it's").as_deref(), Some("name = \"it's\""));
        assert_eq!(version_filter("'\""), None);
    }
}
