//! The page shell every page is drawn in, the error page, the formats shared by pages (times, durations,
//! numbers), and the two safety rules of the UI: the headers every page carries (a Content-Security-Policy
//! without inline script) and the same-origin check every change (a POST) must pass.
//!
//! Every value a user wrote (names, params, tags, descriptions, paths) reaches the page through maud's
//! interpolation, which escapes it; nothing here builds HTML from strings.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use orchard_tracking::{ErrorCode, TrackingError};

use crate::assets::{chart_urls, script_url, stylesheet_url};

/// What the UI allows a page to load: its own stylesheet and scripts, images from itself, nothing inline, no
/// frames of it elsewhere (clickjacking), forms only to itself.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Which part of the UI a page belongs to, for the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Experiments,
    Models,
}

/// A whole page: the navigation bar, breadcrumbs, the content.
pub fn page(title: &str, section: Section, crumbs: &[(&str, String)], content: Markup) -> Response {
    shell(title, section, crumbs, content, false)
}

/// A page that holds metric charts: it loads uPlot and the charts' script too (other pages do not).
pub fn chart_page(title: &str, section: Section, crumbs: &[(&str, String)], content: Markup) -> Response {
    shell(title, section, crumbs, content, true)
}

fn shell(title: &str, section: Section, crumbs: &[(&str, String)], content: Markup, charts: bool) -> Response {
    let [uplot, uplot_css, charts_js] = chart_urls();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Orchard" }
                // The brand's green dot, inline (no request, allowed by the CSP's `img-src data:`).
                link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='%232f7d4f'/%3E%3C/svg%3E";
                link rel="stylesheet" href=(stylesheet_url());
                script src=(script_url()) defer {}
                @if charts {
                    link rel="stylesheet" href=(uplot_css);
                    script src=(uplot) defer {}
                    script src=(charts_js) defer {}
                }
            }
            body {
                header.top {
                    a.brand href="/" { span.dot {} "Orchard" }
                    nav {
                        a href="/" class=[(section == Section::Experiments).then_some("here")] { "Experiments" }
                        a href="/registry" class=[(section == Section::Models).then_some("here")] { "Models" }
                    }
                }
                main {
                    @if !crumbs.is_empty() {
                        div.crumbs {
                            @for (i, (label, href)) in crumbs.iter().enumerate() {
                                @if i > 0 { " / " }
                                a href=(href) { (label) }
                            }
                        }
                    }
                    (content)
                }
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// An HTML answer with the UI's safety headers.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The HTTP status of a domain error: not found is a 404, a request's mistake a 400, the rest a 500.
pub fn status_of(e: &TrackingError) -> StatusCode {
    match e.code() {
        ErrorCode::ResourceDoesNotExist => StatusCode::NOT_FOUND,
        ErrorCode::InternalError | ErrorCode::TemporarilyUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A domain error as a page: not found is a 404, a request's mistake a 400, the rest a 500.
pub fn error_page(e: &TrackingError) -> Response {
    let status = status_of(e);
    let mut response = page(
        "Not available",
        Section::Experiments,
        &[("Experiments", "/".to_string())],
        html! {
            h1 { "This page is not available" }
            div.error { (e.to_string()) }
            p { a href="/" { "Back to the experiments" } }
        },
    );
    *response.status_mut() = status;
    response
}

/// Whether a change request (a POST) comes from a page of this server: its `Origin` (or, without one, its
/// `Referer`) names the host the request was sent to. A page elsewhere cannot make a browser submit the UI's
/// forms (cross-site request forgery), and no token needs to be kept. (The REST API's own protection comes with
/// accounts and tokens; behind a proxy that rewrites `Host`, the proxy must pass the browser's `Host` on.)
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
    let origin_host = rest.split('/').next().unwrap_or("");
    !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Lets a change (any method but GET and HEAD) through only when it comes from a page of this server, so that
/// another site cannot make a visitor's browser post a form here. Layered on every UI route, so that a new
/// form cannot forget it.
pub async fn changes_from_own_pages(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let reads = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if reads || same_origin(req.headers()) { next.run(req).await } else { forbidden() }
}

/// The answer to a change from elsewhere.
pub fn forbidden() -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        html! { p { "Changes are only accepted from Orchard's own pages (the request's Origin is another site)." } },
    )
}

/// The "Overview" table of a run's or a logged model's page: its id, its experiment, then `rest`.
pub fn overview(id_label: &str, id: &str, experiment: &orchard_tracking::Experiment, rest: Markup) -> Markup {
    html! {
        h2 { "Overview" }
        table.data.kv { tbody { (mono_row(id_label, id)) (experiment_row(experiment)) (rest) } }
    }
}

/// A row of an overview table whose value is an identifier or a URI (set in monospace).
pub fn mono_row(label: &str, value: &str) -> Markup {
    html! { tr { td { (label) } td.mono { (value) } } }
}

/// The "Experiment" row of an overview table, linking to it.
pub fn experiment_row(e: &orchard_tracking::Experiment) -> Markup {
    html! { tr { td { "Experiment" } td { a href={ "/experiments/" (e.experiment_id) } { (e.name) } } } }
}

/// Milliseconds since the epoch as `2026-12-03 14:05:09` (UTC).
pub fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms.filter(|m| *m > 0) else { return "–".into() };
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A run's duration: `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 07 min`; `–` without both ends.
pub fn duration(start: Option<i64>, end: Option<i64>) -> String {
    let (Some(s), Some(e)) = (start, end) else { return "–".into() };
    // Times are whatever a client sent: the difference must not overflow.
    let ms = e.saturating_sub(s).max(0);
    match ms {
        0..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// A metric value as a person reads it: up to 6 significant digits, `NaN`/`∞` spelled out.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "−∞".into() };
    }
    if v != 0.0 && (v.abs() >= 1e7 || v.abs() < 1e-4) {
        return format!("{v:.4e}");
    }
    let text = format!("{v:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".into() } else { text.to_string() }
}

/// A query string from pairs (each value form-encoded), `?` included; empty values are left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(k, v);
    }
    let text = out.finish();
    if text.is_empty() { String::new() } else { format!("?{text}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_durations_and_numbers_read_as_people_write_them() {
        assert_eq!(time(Some(0)), "–");
        assert_eq!(time(Some(1_764_770_709_000)), "2025-12-03 14:05:09");
        assert_eq!(time(Some(951_782_400_000)), "2000-02-29 00:00:00");
        assert_eq!(duration(Some(0), Some(850)), "850 ms");
        assert_eq!(duration(Some(0), Some(12_400)), "12.4 s");
        assert_eq!(duration(Some(0), Some(185_000)), "3 min 05 s");
        assert_eq!(duration(Some(0), Some(7_620_000)), "2 h 07 min");
        assert_eq!(duration(Some(5), None), "–");
        assert_eq!(duration(Some(i64::MIN), Some(i64::MAX)), format!("{} h {:02} min", i64::MAX / 3_600_000, i64::MAX % 3_600_000 / 60_000));
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(1.0 / 3.0), "0.333333");
        assert_eq!(number(1.5e-7), "1.5000e-7");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "−∞");
    }

    #[test]
    fn only_a_page_of_this_host_may_change_things() {
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
            }
            h
        };
        assert!(same_origin(&headers(&[(header::HOST, "127.0.0.1:5000"), (header::ORIGIN, "http://127.0.0.1:5000")])));
        assert!(same_origin(&headers(&[(header::HOST, "h:1"), (header::REFERER, "https://h:1/experiments/3?x=1")])));
        assert!(!same_origin(&headers(&[(header::HOST, "127.0.0.1:5000"), (header::ORIGIN, "http://evil.example")])));
        assert!(!same_origin(&headers(&[(header::HOST, "h:1"), (header::ORIGIN, "http://h:1.evil.example")])));
        assert!(!same_origin(&headers(&[(header::HOST, "h:1"), (header::ORIGIN, "null")])));
        assert!(!same_origin(&headers(&[(header::HOST, "h:1")])), "no Origin nor Referer: refused");
    }

    #[test]
    fn query_strings_are_encoded() {
        assert_eq!(query(&[("filter", "metrics.acc > 0.5 AND params.a = 'x&y'"), ("page", "")]),
            "?filter=metrics.acc+%3E+0.5+AND+params.a+%3D+%27x%26y%27");
        assert_eq!(query(&[("page", "")]), "");
    }
}
