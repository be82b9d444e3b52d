//! The home page: every experiment with its run count and last activity, a name search, and the forms that
//! create, rename, delete and restore experiments (each a POST that answers with a redirect back).

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use orchard_tracking::ViewType;
use serde::Deserialize;

use crate::layout::{error_page, page, query, time, Section};
use crate::state::Ui;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Part of a name (case-insensitive).
    #[serde(default)]
    q: String,
    /// `deleted` lists deleted experiments instead.
    #[serde(default)]
    view: String,
    /// The page token of MLflow's search (empty: the first page).
    #[serde(default)]
    page: String,
}

/// Experiments per page, most recently updated first.
const PAGE_SIZE: i64 = 100;

/// MLflow's filter for names containing `part` (case-insensitive). MLflow's strings have no escapes, so the
/// quote is whichever the text does not hold; `%` and `_` stay wildcards (they only widen the search).
pub(crate) fn name_filter(part: &str) -> String {
    match (part.is_empty(), part.contains('\''), part.contains('"')) {
        (true, _, _) => String::new(),
        (false, false, _) => format!("name ILIKE '%{part}%'"),
        (false, true, false) => format!("name ILIKE \"%{part}%\""),
        (false, true, true) => name_filter(&part.replace(['\'', '"'], "%")),
    }
}

pub async fn list(State(ui): State<Ui>, Query(q): Query<ListQuery>) -> Response {
    let deleted = q.view == "deleted";
    let view = if deleted { ViewType::DeletedOnly } else { ViewType::ActiveOnly };
    let order = ["last_update_time DESC".to_string()];
    let page_of = match ui.tracking.search_experiments(view, Some(PAGE_SIZE), &name_filter(q.q.trim()), &order, &q.page).await {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let ids: Vec<String> = page_of.items.iter().map(|e| e.experiment_id.clone()).collect();
    let activity: HashMap<String, (i64, Option<i64>)> = match ui.tracking.experiment_activity(&ids).await {
        Ok(a) => a.into_iter().map(|a| (a.experiment_id, (a.runs, a.last_activity_ms))).collect(),
        Err(e) => return error_page(&e),
    };
    let content = html! {
        h1 { @if deleted { "Deleted experiments" } @else { "Experiments" } }
        div.toolbar {
            form.grow method="get" action="/" role="search" {
                input.wide type="search" name="q" value=(q.q) placeholder="Search experiments by name" aria-label="Search experiments by name";
                @if deleted { input type="hidden" name="view" value="deleted"; }
            }
            @if deleted {
                a.button href="/" { "Active experiments" }
            } @else {
                a.button href="/?view=deleted" { "Deleted experiments" }
            }
        }
        @if !deleted {
            details.panel {
                summary { "New experiment" }
                form.spaced method="post" action="/experiments/create" {
                    input type="text" name="name" required placeholder="Name" aria-label="Experiment name";
                    " "
                    button.primary type="submit" { "Create" }
                }
            }
        }
        @if page_of.items.is_empty() {
            div.panel.empty { @if q.q.is_empty() { "No experiments yet." } @else { "No experiment name contains “" (q.q) "”." } }
        } @else {
            div.table-wrap {
                table.data {
                    thead { tr {
                        th.first { "Name" } th { "ID" } th { "Runs" } th { "Last activity" } th { "Created" } th { "" }
                    } }
                    tbody {
                        @for e in &page_of.items {
                            @let (runs, last) = activity.get(&e.experiment_id).copied().unwrap_or((0, None));
                            tr {
                                td.first { a href={ "/experiments/" (e.experiment_id) } { (e.name) } }
                                td.mono { (e.experiment_id) }
                                td.num { (runs) }
                                td { (time(last.or(Some(e.last_update_time)))) }
                                td { (time(Some(e.creation_time))) }
                                td {
                                    @if deleted {
                                        form.inline method="post" action={ "/experiments/" (e.experiment_id) "/restore" } {
                                            button type="submit" { "Restore" }
                                        }
                                    } @else {
                                        details.inline {
                                            summary.muted { "Rename" }
                                            form method="post" action={ "/experiments/" (e.experiment_id) "/rename" } {
                                                input type="text" name="name" value=(e.name) required aria-label="New name";
                                                button type="submit" { "Save" }
                                            }
                                        }
                                        " "
                                        form.inline method="post" action={ "/experiments/" (e.experiment_id) "/delete" } {
                                            button.danger type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let pager = html! {
        div.pager {
            @if !q.page.is_empty() { a.button href={ "/" (query(&[("q", &q.q), ("view", &q.view)])) } { "← First page" } }
            @if let Some(token) = &page_of.next_page_token {
                a.button href={ "/" (query(&[("q", &q.q), ("view", &q.view), ("page", token)])) } { "Next page →" }
            }
        }
    };
    page("Experiments", Section::Experiments, &[], html! { (content) (pager) })
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

/// After a change, back to the list (the browser's refresh then shows the list, not a repeated POST); a
/// mistake as a page.
fn back(view: &str, changed: orchard_tracking::Result<()>) -> Response {
    match changed {
        Ok(()) => Redirect::to(&format!("/{}", query(&[("view", view)]))).into_response(),
        Err(e) => error_page(&e),
    }
}

pub async fn create(State(ui): State<Ui>, Form(f): Form<NameForm>) -> Response {
    match ui.tracking.create_experiment(f.name.trim(), None, &[]).await {
        Ok(id) => Redirect::to(&format!("/experiments/{id}")).into_response(),
        Err(e) => error_page(&e),
    }
}

pub async fn rename(State(ui): State<Ui>, Path(id): Path<String>, Form(f): Form<NameForm>) -> Response {
    back("", ui.tracking.rename_experiment(&id, f.name.trim()).await)
}

pub async fn delete(State(ui): State<Ui>, Path(id): Path<String>) -> Response {
    back("", ui.tracking.delete_experiment(&id).await)
}

/// Back to the deleted experiments, where the restored one was.
pub async fn restore(State(ui): State<Ui>, Path(id): Path<String>) -> Response {
    back("deleted", ui.tracking.restore_experiment(&id).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_search_escapes_wildcards_and_quotes() {
        assert_eq!(name_filter(""), "");
        assert_eq!(name_filter("iris"), "name ILIKE '%iris%'");
        assert_eq!(name_filter("o'k"), "name ILIKE \"%o'k%\"");
        assert_eq!(name_filter("o'k \"x\""), "name ILIKE '%o%k %x%%'");
    }
}
