//! The UI's static files, compiled into the binary and served under names that carry a hash of their content,
//! so that a browser may keep them for a year and still never uses a stale one after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The files, by their plain name: content and media type.
const FILES: &[(&str, &str, &str)] = &[
    ("orchard.css", include_str!("assets/orchard.css"), "text/css; charset=utf-8"),
    ("orchard.js", include_str!("assets/orchard.js"), "text/javascript; charset=utf-8"),
    ("charts.js", include_str!("assets/charts.js"), "text/javascript; charset=utf-8"),
    // uPlot (MIT), vendored unmodified: see assets/vendor/README.md.
    ("uPlot.js", include_str!("assets/vendor/uPlot.iife.min.js"), "text/javascript; charset=utf-8"),
    ("uPlot.css", include_str!("assets/vendor/uPlot.min.css"), "text/css; charset=utf-8"),
    ("uPlot-LICENSE.txt", include_str!("assets/vendor/uPlot-LICENSE.txt"), "text/plain; charset=utf-8"),
];

/// FNV-1a, 64 bits: a content fingerprint for cache busting (not a security measure).
fn fingerprint(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

/// Each file's URL, e.g. `/static/orchard-3f2a….css`, with its content and type.
fn served() -> &'static [(String, &'static str, &'static str)] {
    static URLS: OnceLock<Vec<(String, &'static str, &'static str)>> = OnceLock::new();
    URLS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content, mime)| {
                let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
                (format!("/static/{stem}-{}.{ext}", fingerprint(content.as_bytes())), *content, *mime)
            })
            .collect()
    })
}

fn url_of(name: &str) -> &'static str {
    let i = FILES.iter().position(|(n, _, _)| *n == name).unwrap_or(0);
    &served()[i].0
}

pub fn stylesheet_url() -> &'static str {
    url_of("orchard.css")
}

pub fn script_url() -> &'static str {
    url_of("orchard.js")
}

/// What a page with charts loads besides: uPlot's script and stylesheet, and the charts' own script.
pub fn chart_urls() -> [&'static str; 3] {
    [url_of("uPlot.js"), url_of("uPlot.css"), url_of("charts.js")]
}

/// `GET /static/{file}`: only the current names are served (an old hash is a 404, so a stale page reloads).
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/static/{file}");
    match served().iter().find(|(url, _, _)| *url == wanted) {
        Some((_, content, mime)) => (
            [(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
            *content,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_changes_with_the_content() {
        assert_ne!(fingerprint(b"a{color:red}"), fingerprint(b"a{color:blue}"));
        assert!(stylesheet_url().starts_with("/static/orchard-") && stylesheet_url().ends_with(".css"));
        assert!(script_url().ends_with(".js") && script_url() != stylesheet_url());
        let [uplot, uplot_css, charts] = chart_urls();
        assert!(uplot.starts_with("/static/uPlot-") && uplot_css.ends_with(".css") && charts.starts_with("/static/charts-"));
    }
}
