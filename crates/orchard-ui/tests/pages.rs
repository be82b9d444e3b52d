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
    let body = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, headers, body)
}

/// Only the status of a GET.
async fn status_of(app: &axum::Router, uri: &str) -> StatusCode {
    get(app, uri).await.0
}

/// A form posted to the UI on host 127.0.0.1:5000, from the page of `origin`.
fn form_post(path: String, form: &str, origin: &str) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, "127.0.0.1:5000")
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap()
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

    assert_eq!(status_of(&app, "/runs/0123456789abcdef0123456789abcdef").await, StatusCode::NOT_FOUND);
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

#[tokio::test]
async fn chart_data_keeps_every_spike_and_zooms_to_full_detail() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment("charts", None, &[]).await.unwrap();
    let a = t.create_run(&exp, "me", Some("a"), Some(1_000), &[]).await.unwrap().info.run_id;
    let b = t.create_run(&exp, "me", Some("b"), Some(1_000), &[]).await.unwrap().info.run_id;
    let points: Vec<Metric> = (0..20_000)
        .map(|i| Metric::new("loss", if i == 12_345 { 99.0 } else { 1.0 / f64::from(i + 1) }, 1_000 + i64::from(i), i64::from(i)))
        .collect();
    for chunk in points.chunks(1_000) {
        t.log_batch(&a, chunk, &[], &[]).await.unwrap();
    }
    t.log_metric(&b, Metric::new("loss", 0.5, 2_000, 3)).await.unwrap();

    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();
    let (status, _, body) = get(&app, &format!("/charts/series?run={b}&run={a}&key=loss&width=200")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series = json(&body)["series"].clone();
    // One series per run asked, in the order asked (the page labels them by position).
    assert_eq!(series[0]["run_id"], b.as_str());
    // (Steps go out as JSON integers: compared as numbers.)
    let xs_b: Vec<f64> = series[0]["x"].as_array().unwrap().iter().filter_map(|x| x.as_f64()).collect();
    assert_eq!(xs_b, vec![3.0]);
    let (xs, ys) = (series[1]["x"].as_array().unwrap(), series[1]["y"].as_array().unwrap());
    assert_eq!(series[1]["total"], 20_000);
    assert!(xs.len() <= 800 && xs.len() == ys.len(), "{} points for 200 px", xs.len());
    let spike = xs.iter().position(|x| x == 12_345.0).expect("the spike's step is kept");
    assert_eq!(ys[spike], 99.0);

    // Zoomed into 100 steps: every point, at full detail.
    let (_, _, body) = get(&app, &format!("/charts/series?run={a}&key=loss&width=200&from=12300&to=12399")).await;
    let zoomed = json(&body)["series"][0].clone();
    assert_eq!(zoomed["x"].as_array().unwrap().len(), 100);
    assert_eq!(zoomed["total"], 100);

    // On a time axis, relative to the first point, in milliseconds.
    let (_, _, body) = get(&app, &format!("/charts/series?run={a}&key=loss&x=relative&width=16&to=9")).await;
    assert_eq!(json(&body)["series"][0]["x"][0], 0.0);

    let (status, _, body) = get(&app, &format!("/charts/series?run={a}&key=loss&x=epoch")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(json(&body)["message"].as_str().unwrap().contains("'x'"), "{body}");
    let (status, _, body) = get(&app, "/charts/series?key=loss").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_run_page_has_a_chart_per_metric_with_history() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment("charts", None, &[]).await.unwrap();
    let id = t.create_run(&exp, "me", Some(XSS), Some(1_000), &[]).await.unwrap().info.run_id;
    for step in 0..3 {
        t.log_metric(&id, Metric::new("acc", 0.5 + f64::from(step) / 10.0, 1_000 + i64::from(step), i64::from(step))).await.unwrap();
    }
    t.log_metric(&id, Metric::new("final", 1.0, 5_000, 0)).await.unwrap();
    let (status, headers, page) = get(&app, &format!("/runs/{id}?x=time&log=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.contains("data-key=\"acc\"") && page.contains("data-key=\"final\""), "{page}");
    assert!(page.contains("<option value=\"time\" selected>"), "the x axis is the URL's");
    assert!(!page.contains("<script>"), "run names reach the chart's labels escaped");
}

#[tokio::test]
async fn files_are_previewed_as_text_tables_images_and_models_never_as_markup() {
    let (app, t, dir) = fixture().await;
    let root = dir.path().join("artifacts");
    let exp = t.create_experiment("files", Some(&format!("file://{}", root.display())), &[]).await.unwrap();
    let run = t.create_run(&exp, "me", Some("r"), Some(1_000), &[]).await.unwrap();
    let id = run.info.run_id.clone();
    let files = std::path::PathBuf::from(run.info.artifact_uri.strip_prefix("file://").unwrap());
    std::fs::create_dir_all(files.join("model")).unwrap();
    std::fs::write(files.join("data.csv"), "sepal,species\n5.1,<b>setosa</b>\n").unwrap();
    std::fs::write(files.join("report.html"), format!("<html>{XSS}</html>")).unwrap();
    std::fs::write(files.join("plot.png"), b"\x89PNG\r\n\x1a\n....").unwrap();
    std::fs::write(
        files.join("model/MLmodel"),
        "flavors:\n  lightgbm: {}\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"sepal\"}]'\n  outputs: '[{\"type\": \"long\"}]'\n",
    )
    .unwrap();

    let (status, _, page) = get(&app, &format!("/runs/{id}?file=data.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<th>sepal</th>") && page.contains("<td>&lt;b&gt;setosa&lt;/b&gt;</td>"), "{page}");
    let (_, _, page) = get(&app, &format!("/runs/{id}?file=report.html")).await;
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"), "HTML shows as text");
    let (_, _, page) = get(&app, &format!("/runs/{id}?path=model&file=model%2FMLmodel")).await;
    assert!(page.contains("<code>lightgbm</code>") && page.contains(">sepal<") && page.contains(">long<"), "{page}");
    let (_, _, page) = get(&app, &format!("/runs/{id}?file=plot.png")).await;
    assert!(page.contains(&format!("src=\"/runs/{id}/image?path=plot.png\"")), "{page}");

    let (status, headers, _) = get(&app, &format!("/runs/{id}/image?path=plot.png")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(status_of(&app, &format!("/runs/{id}/image?path=report.html")).await, StatusCode::NOT_FOUND, "only raster images are served inline");

    // A path out of the run's folder is refused, as by the API.
    std::fs::write(root.join("secret.txt"), "not yours").unwrap();
    let (_, _, page) = get(&app, &format!("/runs/{id}?file=..%2F..%2Fsecret.txt")).await;
    assert!(files.join("../../secret.txt").exists(), "the path would reach the file");
    assert!(page.contains("class=\"error\"") && !page.contains("not yours"), "{page}");
}

#[tokio::test]
async fn a_runs_tags_and_description_are_edited_from_its_page() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment("edits", None, &[]).await.unwrap();
    let id = t.create_run(&exp, "me", Some("r"), Some(1_000), &[Tag::new("old", "1")]).await.unwrap().info.run_id;
    let post = form_post;
    let here = "http://127.0.0.1:5000";
    let res = app.clone().oneshot(post(format!("/runs/{id}/tags"), "key=team&value=%3Cb%3Evision%3C%2Fb%3E", here)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], format!("/runs/{id}"));
    let res = app.clone().oneshot(post(format!("/runs/{id}/tags/delete"), "key=old", here)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = app.clone().oneshot(post(format!("/runs/{id}/description"), "description=first+try%0Asecond+line", here)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let run = t.get_run(&id).await.unwrap();
    let tag = |k: &str| run.tags.iter().find(|t| t.key == k).map(|t| t.value.clone());
    assert_eq!(tag("team").as_deref(), Some("<b>vision</b>"));
    assert_eq!(tag("old"), None);
    assert_eq!(tag("mlflow.note.content").as_deref(), Some("first try\nsecond line"), "where MLflow keeps it");
    let (_, _, page) = get(&app, &format!("/runs/{id}")).await;
    assert!(page.contains("&lt;b&gt;vision&lt;/b&gt;") && page.contains("first try\nsecond line"));

    // From elsewhere: refused, nothing changed. A bad key: MLflow's message, nothing changed.
    let res = app.clone().oneshot(post(format!("/runs/{id}/tags/delete"), "key=team", "http://evil.example")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.clone().oneshot(post(format!("/runs/{id}/tags"), "key=..%2Fx&value=1", here)).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(t.get_run(&id).await.unwrap().tags.iter().filter(|t| t.key == "team").count(), 1);
}

#[tokio::test]
async fn the_registry_lists_models_and_moves_aliases_from_its_pages() {
    let (app, t, _dir) = fixture().await;
    let name = format!("iris {XSS}");
    t.create_registered_model(&name, Some(XSS), &[]).await.unwrap();
    for _ in 0..2 {
        t.create_model_version(&name, "s3://bucket/model", None, &[], None, None, None).await.unwrap();
    }
    t.set_registered_model_alias(&name, "champion", "1").await.unwrap();
    let url = format!("/registry/{}", percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC));

    let (status, _, list) = get(&app, "/registry").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&format!("href=\"{url}\"")) && list.contains("@champion → v1") && !list.contains("<script>"), "{list}");
    let (_, _, none) = get(&app, "/registry?q=nothing-like-it").await;
    assert!(none.contains("No model matches"));

    let (status, _, model) = get(&app, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(model.contains("<td class=\"first\">v2</td>") && model.contains("<td class=\"first\">v1</td>") && !model.contains("<script>"));

    let post = form_post;
    let res = app.clone().oneshot(post(format!("{url}/aliases"), "alias=champion&version=2", "http://evil.example")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(t.get_model_version_by_alias(&name, "champion").await.unwrap().version, 1);
    let res = app.clone().oneshot(post(format!("{url}/aliases"), "alias=champion&version=2", "http://127.0.0.1:5000")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(t.get_model_version_by_alias(&name, "champion").await.unwrap().version, 2, "the alias moved");
    let res = app.clone().oneshot(post(format!("{url}/aliases"), "alias=latest&version=1", "http://127.0.0.1:5000")).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "MLflow's reserved alias is refused");
    let res = app.clone().oneshot(post(format!("{url}/aliases/delete"), "alias=champion", "http://127.0.0.1:5000")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(t.get_model_version_by_alias(&name, "champion").await.is_err());
    assert_eq!(status_of(&app, "/registry/no-such-model").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn experiments_come_in_pages() {
    let (app, t, _dir) = fixture().await;
    for i in 0..104 {
        t.create_experiment(&format!("exp-{i:03}"), None, &[]).await.unwrap();
    }
    let (_, _, first) = get(&app, "/").await;
    let rows = |page: &str| page.matches("<td class=\"first\"><a href=\"/experiments/").count();
    assert_eq!(rows(&first), 100, "the Default experiment and 104 others: 100 on the first page");
    let next = first.split("href=\"/?page=").nth(1).expect("a link to the next page").split('"').next().unwrap().to_string();
    let (_, _, second) = get(&app, &format!("/?page={next}")).await;
    assert_eq!(rows(&second), 5);
    assert!(second.contains("First page") && !second.contains("Next page"));
}

#[tokio::test]
async fn logged_models_are_listed_and_shown_with_their_files() {
    let (app, t, dir) = fixture().await;
    let root = dir.path().join("artifacts");
    let exp = t.create_experiment("models", Some(&format!("file://{}", root.display())), &[]).await.unwrap();
    let run = t.create_run(&exp, "me", Some("train"), Some(1_000), &[]).await.unwrap().info.run_id;
    let model = t
        .create_logged_model(&exp, Some("iris-lgbm"), Some("lightgbm"), Some(&run), &[Tag::new("lr", XSS)], &[])
        .await
        .unwrap();
    let files = std::path::PathBuf::from(model.artifact_uri.strip_prefix("file://").unwrap());
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("MLmodel"), "flavors:\n  lightgbm: {}\n").unwrap();
    std::fs::write(files.join("importance.png"), b"\x89PNG\r\n\x1a\n").unwrap();

    let (status, _, list) = get(&app, &format!("/experiments/{exp}/models")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&format!("href=\"/logged-models/{}\"", model.model_id)) && list.contains(">lightgbm<"), "{list}");
    let (status, _, page) = get(&app, &format!("/logged-models/{}?file=MLmodel", model.model_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("href=\"/runs/{run}\"")) && page.contains("&lt;script&gt;") && !page.contains("<script>"));
    assert!(page.contains("<code>lightgbm</code>"), "the MLmodel is previewed: {page}");
    assert!(page.contains(&format!("/ajax-api/2.0/mlflow/logged-models/{}/artifacts/files?artifact_file_path=MLmodel", model.model_id)));
    let (status, headers, _) = get(&app, &format!("/logged-models/{}/image?path=importance.png", model.model_id)).await;
    assert_eq!((status, headers[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "image/png"));
    assert_eq!(status_of(&app, "/logged-models/m-0000000000000000000000000000dead").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compare_shows_the_runs_asked_in_order_and_names_a_missing_one() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment("cmp", None, &[]).await.unwrap();
    let mut ids = Vec::new();
    for (name, lr) in [("alpha", "0.1"), ("beta", "0.2"), ("gamma", "0.1")] {
        let run = t.create_run(&exp, "me", Some(name), Some(1_000), &[]).await.unwrap();
        t.log_param(&run.info.run_id, "lr", lr).await.unwrap();
        ids.push(run.info.run_id);
    }
    // Asked gamma, alpha, beta (and alpha again): one column each, in that order.
    let q = format!("/compare?run={}&run={}&run={}&run={}", ids[2], ids[0], ids[1], ids[0]);
    let (status, _, page) = get(&app, &q).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Comparing 3 runs"), "{page}");
    let at = |name: &str| page.find(&format!(">{name}</a>")).unwrap_or_else(|| panic!("{name} missing"));
    assert!(at("gamma") < at("alpha") && at("alpha") < at("beta"));
    let missing = "0123456789abcdef0123456789abcdef";
    let (status, _, page) = get(&app, &format!("/compare?run={}&run={missing}", ids[0])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains(missing), "the error names the run that is not there");
}

#[tokio::test]
async fn comparing_a_thousand_runs_shows_the_keys_they_share_first() {
    let (app, t, _dir) = fixture().await;
    let exp = t.create_experiment("many", None, &[]).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..1000 {
        let run = t.create_run(&exp, "me", Some(&format!("r{i}")), Some(1_000), &[]).await.unwrap();
        let id = run.info.run_id;
        // One metric every run has, and one of its own: 1,001 keys between them.
        t.log_batch(&id, &[Metric::new("shared", 1.0, 1, 0), Metric::new(format!("own_{i:04}"), 2.0, 1, 0)], &[], &[])
            .await
            .unwrap();
        ids.push(id);
    }
    let q: String = ids.iter().map(|id| format!("run={id}&")).collect();
    let (status, _, page) = get(&app, &format!("/compare?{q}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Metrics (1001)") && page.contains("The 50 keys most of these runs have, of 1001"), "{}", &page[..2000]);
    let shared = page.find(">shared<").expect("the shared key is shown");
    assert!(shared < page.find(">own_0000<").unwrap(), "the key every run has comes first");
    assert!(!page.contains(">own_0100<"), "keys past the first 50 wait for 'Show all'");
    let (_, _, all) = get(&app, &format!("/compare?{q}rows=all")).await;
    assert!(all.contains(">own_0999<"));
}
