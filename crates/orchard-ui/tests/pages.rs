//! The UI's pages through its router, on a real SQLite store: what they show, that user strings arrive escaped,
//! the safety headers, and that a change from another site is refused. (The same pages in a real browser:
//! tests/interop/test_ui.py.)

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use orchard_store::Store;
use orchard_tracking::{Metric, Tag, Tracking};
use tower::ServiceExt;

const XSS: &str = "\"><script>alert(1)</script>";

async fn fixture() -> (axum::Router, Tracking, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:///{}/o.db", dir.path().display())).await.unwrap();
    let tracking = Tracking::new(store, "mlflow-artifacts:/").await.unwrap();
    (orchard_ui::router(tracking.clone(), None), tracking, dir)
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn pages_show_what_was_logged_and_escape_it() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment(XSS, None, &[]).await.unwrap();
    let run = t.create_run(&exp, "me", Some(XSS), Some(1_000), &[Tag::new("team", XSS)]).await.unwrap();
    let id = run.info.run_id.clone();
    t.log_param(&id, "lr", "0.1").await.unwrap();
    t.log_metric(&id, Metric::new("acc", 0.5, 2_000, 0)).await.unwrap();

    let (status, headers, home) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    assert!(home.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), "{home}");
    assert!(!home.contains("<script>"), "a name reaches the page as text");

    let (_, _, runs) = get(&app, &format!("/experiments/{exp}?col=params.lr&col=metrics.acc&col=tags.{}", "%3Cscript%3E")).await;
    assert!(runs.contains(&format!("href=\"/runs/{id}\"")) && runs.contains(">0.1<") && runs.contains(">0.5<"));
    assert!(!runs.contains("<script>"), "nor a column name taken from the URL");

    let (_, _, page) = get(&app, &format!("/runs/{id}")).await;
    assert!(page.contains(">lr<") && page.contains(">acc<") && !page.contains("<script>"));

    let (status, _, bad) = get(&app, &format!("/experiments/{exp}?filter=metrics.acc+%3E")).await;
    assert_eq!(status, StatusCode::OK, "a filter mistake is shown on the page");
    assert!(bad.contains("class=\"error\"") && bad.contains("column"), "{bad}");

    let (status, _, _) = get(&app, "/runs/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn changes_only_come_from_this_servers_pages() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment("keep", None, &[]).await.unwrap();
    let post = |origin: Option<&str>| {
        let mut req = Request::post(format!("/experiments/{exp}/delete")).header(header::HOST, "127.0.0.1:5000");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req.body(Body::empty()).unwrap()
    };
    let res = app.clone().oneshot(post(Some("http://evil.example"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.clone().oneshot(post(None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(t.get_experiment(&exp).await.unwrap().lifecycle_stage, "active");
    let res = app.clone().oneshot(post(Some("http://127.0.0.1:5000"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(t.get_experiment(&exp).await.unwrap().lifecycle_stage, "deleted");
}
