//! Previews of a run's files on its page (`/runs/{id}?file=<path>`): images, text (JSON pretty-printed), the first
//! rows of a CSV/TSV or a Parquet file (with its schema) as a table, and an `MLmodel` file as its flavors and
//! signature. Files are read through the
//! same artifact access as downloads (`orchard_tracking::artifacts`, whose path checks apply), and only their
//! first bytes.
//!
//! Nothing a user logged is rendered as markup in Orchard's origin: HTML and SVG files show as text, and the only
//! bytes served inline (`/runs/{id}/image?path=`) are raster images, with their type fixed by the extension and
//! `nosniff`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use maud::{html, Markup};
use orchard_tracking::artifacts::{open_under, FileInfo};
use orchard_tracking::{LoggedModel, Run, TrackingError};

use crate::layout::{error_page, query};
use crate::state::Ui;

/// How much of a file a preview reads: enough for a page, little enough to keep the page light.
const TEXT_BYTES: usize = 256 * 1024;
/// The largest image shown inline.
const IMAGE_BYTES: usize = 20 * 1024 * 1024;
/// Rows of a table shown.
const TABLE_ROWS: usize = 100;
/// The largest Parquet file previewed (its footer, at the end, says where the rows are: the file is read whole).
const PARQUET_BYTES: usize = 64 * 1024 * 1024;

/// What kind of preview a file gets, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A raster image, with its media type.
    Image(&'static str),
    MlModel,
    /// Delimited text with its delimiter.
    Table(u8),
    Parquet,
    Text,
    None,
}

pub fn kind_of(path: &str) -> Kind {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "MLmodel" {
        return Kind::MlModel;
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => Kind::Image("image/png"),
        "jpg" | "jpeg" => Kind::Image("image/jpeg"),
        "gif" => Kind::Image("image/gif"),
        "webp" => Kind::Image("image/webp"),
        "csv" => Kind::Table(b','),
        "tsv" => Kind::Table(b'\t'),
        "parquet" => Kind::Parquet,
        "txt" | "log" | "json" | "yaml" | "yml" | "md" | "py" | "sh" | "toml" | "ini" | "cfg" | "html" | "htm" | "svg"
        | "xml" | "r" | "sql" | "lock" | "" => Kind::Text,
        _ => Kind::None,
    }
}

/// Whose files are shown: a run's or a logged model's. It says where the files are and the URLs that serve one.
pub enum Owner<'a> {
    Run(&'a Run),
    LoggedModel(&'a LoggedModel),
}

impl Owner<'_> {
    fn root(&self) -> &str {
        match self {
            Owner::Run(r) => &r.info.artifact_uri,
            Owner::LoggedModel(m) => &m.artifact_uri,
        }
    }

    /// The URL that downloads a file (the routes MLflow's UI uses).
    fn download(&self, path: &str) -> String {
        match self {
            Owner::Run(r) => format!("/get-artifact{}", query(&[("run_id", &r.info.run_id), ("path", path)])),
            Owner::LoggedModel(m) => format!(
                "/ajax-api/2.0/mlflow/logged-models/{}/artifacts/files{}",
                m.model_id,
                query(&[("artifact_file_path", path)])
            ),
        }
    }

    /// The URL that shows an image inline.
    fn image(&self, path: &str) -> String {
        match self {
            Owner::Run(r) => format!("/runs/{}/image{}", r.info.run_id, query(&[("path", path)])),
            Owner::LoggedModel(m) => format!("/logged-models/{}/image{}", m.model_id, query(&[("path", path)])),
        }
    }
}

/// The first `limit` bytes of a file, and whether there was more.
async fn head(ui: &Ui, owner: &Owner<'_>, path: &str, limit: usize) -> Result<(Vec<u8>, bool), TrackingError> {
    let (size, mut stream) = open_under(ui.artifacts.as_ref(), owner.root(), path).await?;
    let mut out = Vec::with_capacity(limit.min(usize::try_from(size).unwrap_or(limit)));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| TrackingError::internal(e.to_string()))?;
        let room = limit - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() == limit {
            return Ok((out, size > limit as u64));
        }
    }
    Ok((out, false))
}

fn path_of(raw: Option<&str>) -> String {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes()).find(|(k, _)| k == "path").map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// `GET /runs/{id}/image?path=`: a raster image of the run, inline (every other file is a download through
/// `/get-artifact`).
pub async fn image(State(ui): State<Ui>, Path(run_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    match ui.tracking.get_run(&run_id).await {
        Ok(run) => image_of(&ui, &Owner::Run(&run), &path_of(raw.as_deref())).await,
        Err(e) => error_page(&e),
    }
}

/// `GET /logged-models/{id}/image?path=`: the same for a logged model's files.
pub async fn model_image(State(ui): State<Ui>, Path(model_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    match ui.tracking.get_logged_model(&model_id).await {
        Ok(model) => image_of(&ui, &Owner::LoggedModel(&model), &path_of(raw.as_deref())).await,
        Err(e) => error_page(&e),
    }
}

async fn image_of(ui: &Ui, owner: &Owner<'_>, path: &str) -> Response {
    let Kind::Image(mime) = kind_of(path) else {
        return (StatusCode::NOT_FOUND, "not an image").into_response();
    };
    match head(ui, owner, path, IMAGE_BYTES).await {
        Ok((_, true)) => (StatusCode::PAYLOAD_TOO_LARGE, "image too large to show").into_response(),
        Ok((bytes, false)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "private, max-age=60"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error_page(&e),
    }
}

/// The preview of one file of a run or a logged model, for its page.
pub async fn preview(ui: &Ui, owner: &Owner<'_>, path: &str) -> Markup {
    let name = path.rsplit('/').next().unwrap_or(path);
    let download = owner.download(path);
    let body = match kind_of(path) {
        Kind::Image(_) => html! { img.preview src=(owner.image(path)) alt=(name); },
        Kind::Parquet => match head(ui, owner, path, PARQUET_BYTES).await {
            Err(e) => html! { div.error { (e.to_string()) } },
            Ok((_, true)) => html! { p.muted { "Too large to preview here (over " (PARQUET_BYTES >> 20) " MB): download it." } },
            Ok((bytes, false)) => parquet_table(bytes),
        },
        Kind::None => html! { p.muted { "No preview for this kind of file." } },
        kind => match head(ui, owner, path, TEXT_BYTES).await {
            Err(e) => html! { div.error { (e.to_string()) } },
            Ok((bytes, more)) => {
                let text = String::from_utf8_lossy(&bytes);
                let shown = match kind {
                    Kind::MlModel => mlmodel(&text),
                    Kind::Table(delimiter) => table(&bytes, delimiter, more),
                    _ => text_block(name, &text),
                };
                html! {
                    (shown)
                    @if more { p.muted { "Showing the first " (TEXT_BYTES / 1024) " KB." } }
                }
            }
        },
    };
    html! {
        div.panel.wide #preview {
            h2 { "Preview · " code { (path) } " " a.button href=(download) { "Download" } }
            (body)
        }
    }
}

/// The file browser of a run's or logged model's page (at `page`): the folder `dir`, its folders to open, its
/// files to preview (`file` is the one previewed) or download.
pub fn files_panel(page: &str, owner: &Owner<'_>, dir: &str, file: &str, files: &Result<Vec<FileInfo>, TrackingError>) -> Markup {
    let leaf = |p: &'_ str| -> String { p.rsplit('/').next().unwrap_or(p).to_string() };
    html! {
        h2 { "Artifacts" @if !dir.is_empty() { " · " code { (dir) } } }
        @match files {
            Err(e) => { div.error { (e.to_string()) } }
            Ok(files) if files.is_empty() => { p.muted { "No files." } }
            Ok(files) => {
                table.data #artifacts { tbody {
                    @if !dir.is_empty() {
                        @let up = dir.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                        tr { td { a href={ (page) (query(&[("path", up)])) } { "↑ up" } } td {} }
                    }
                    @for f in files {
                        tr {
                            @if f.is_dir {
                                td { a href={ (page) (query(&[("path", &f.path)])) } { "▸ " (leaf(&f.path)) "/" } }
                                td {}
                            } @else {
                                td { a.selected[file == f.path] href={ (page) (query(&[("path", dir), ("file", &f.path)])) "#preview" } { (leaf(&f.path)) } }
                                td.num.muted { (f.file_size.map(|s| format!("{s} B")).unwrap_or_default()) " "
                                    a href=(owner.download(&f.path)) title="Download" { "⤓" } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn text_block(name: &str, text: &str) -> Markup {
    // JSON reads better indented; a file that is not (or is cut short) shows as it is.
    let pretty = name
        .ends_with(".json")
        .then(|| serde_json::from_str::<serde_json::Value>(text).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    html! { pre.preview { (pretty.as_deref().unwrap_or(text)) } }
}

/// The first rows of delimited text as a table (the first row as its header).
fn table(bytes: &[u8], delimiter: u8, more: bool) -> Markup {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(false).from_reader(bytes);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut records = reader.records();
    let mut ended = false;
    while rows.len() <= TABLE_ROWS {
        match records.next() {
            Some(Ok(r)) => rows.push(r.iter().map(str::to_string).collect()),
            // The last line of a file read in part may be cut, and so unreadable: what came before stands.
            Some(Err(_)) if more => break,
            Some(Err(e)) => return html! { div.error { "Not readable as a table: " (e.to_string()) } },
            None => {
                ended = true;
                break;
            }
        }
    }
    // Read in part to its end, the last row read is where the file was cut.
    if more && ended {
        rows.pop();
    }
    let Some((header, body)) = rows.split_first() else { return html! { p.muted { "Empty file." } } };
    html! {
        div.table-wrap { table.data #preview-table {
            thead { tr { @for h in header { th { (h) } } } }
            tbody { @for r in body.iter().take(TABLE_ROWS) { tr { @for c in r { td { (c) } } } } }
        } }
        p.muted { "First " (body.len().min(TABLE_ROWS)) " rows." }
    }
}

/// A Parquet file: its schema (columns, types, nullability), its row count, and its first rows.
fn parquet_table(bytes: Vec<u8>) -> Markup {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let builder = match ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)) {
        Ok(b) => b,
        Err(e) => return html! { div.error { "Not readable as Parquet: " (e.to_string()) } },
    };
    let rows_in_file = builder.metadata().file_metadata().num_rows();
    let fields: Vec<(String, String, bool)> =
        builder.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable())).collect();
    let schema = schema_table(&fields, rows_in_file);
    // A codec the preview does not read (zstd, gzip, …) is said as such; the schema still shows.
    let unreadable = |e: String| html! { (schema) div.error { "The rows cannot be read here: " (e) } };
    let mut reader = match builder.with_batch_size(TABLE_ROWS).with_limit(TABLE_ROWS).build() {
        Ok(r) => r,
        Err(e) => return unreadable(e.to_string()),
    };
    let batch = match reader.next() {
        None => return schema,
        Some(Err(e)) => return unreadable(e.to_string()),
        Some(Ok(b)) => b,
    };
    let options = FormatOptions::default().with_null("null");
    let columns: Vec<Option<ArrayFormatter>> =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok()).collect();
    html! {
        (schema)
        div.table-wrap { table.data #preview-table {
            thead { tr { @for f in &fields { th { (f.0) } } } }
            tbody { @for i in 0..batch.num_rows() { tr { @for c in &columns {
                td { @match c { Some(c) => { (c.value(i).to_string()) } None => { span.muted { "?" } } } }
            } } } }
        } }
        p.muted { "First " (batch.num_rows()) " of " (rows_in_file) " rows." }
    }
}

/// A Parquet file's columns (name, type, nullable) and its number of rows.
fn schema_table(fields: &[(String, String, bool)], rows: i64) -> Markup {
    html! {
        details.schema open {
            summary { "Schema: " (fields.len()) " columns, " (rows) " rows" }
            table.data.signature #parquet-schema { thead { tr { th { "Column" } th { "Type" } th { "Nullable" } } }
                tbody { @for (name, kind, nullable) in fields { tr { td { (name) } td.mono { (kind) } td { @if *nullable { "yes" } @else { "no" } } } } }
            }
        }
    }
}

/// An `MLmodel` file: its flavors, and its signature's inputs and outputs as tables; the file itself below.
fn mlmodel(text: &str) -> Markup {
    // YAML's anchors and aliases let a file of a few lines stand for a tree of billions of nodes (an "alias bomb");
    // MLflow never writes them in an MLmodel, so a file that has them is shown as text, not parsed.
    if has_anchors_or_aliases(text) {
        return text_block("MLmodel", text);
    }
    let parsed = orchard_yaml::parse(text).map(|n| n.to_json());
    let Ok(model) = parsed else { return text_block("MLmodel", text) };
    let flavors: Vec<&str> = model["flavors"].as_object().map(|f| f.keys().map(String::as_str).collect()).unwrap_or_default();
    // The signature's parts are JSON texts inside the YAML.
    let spec = |part: &str| -> Vec<serde_json::Value> {
        model["signature"][part]
            .as_str()
            .and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(s).ok())
            .unwrap_or_default()
    };
    let columns = |cols: &[serde_json::Value]| {
        html! {
            table.data.signature { thead { tr { th { "Name" } th { "Type" } th { "Shape" } } }
                tbody { @for c in cols {
                    tr {
                        td { (c["name"].as_str().unwrap_or("–")) }
                        td { (c["type"].as_str().unwrap_or("")) @if let Some(t) = c["tensor-spec"]["dtype"].as_str() { " (" (t) ")" } }
                        td { (c["tensor-spec"]["shape"].to_string().replace("null", "")) }
                    }
                } }
            }
        }
    };
    let (inputs, outputs) = (spec("inputs"), spec("outputs"));
    html! {
        p { "Flavors: " @for (i, f) in flavors.iter().enumerate() { @if i > 0 { ", " } code { (f) } } }
        @if inputs.is_empty() && outputs.is_empty() { p.muted { "No signature logged." } } @else {
            div.grid2 {
                div { h3 { "Inputs (" (inputs.len()) ")" } (columns(&inputs)) }
                div { h3 { "Outputs (" (outputs.len()) ")" } (columns(&outputs)) }
            }
        }
        details { summary.muted { "The file" } (text_block("MLmodel", text)) }
    }
}

/// Whether YAML text may hold an anchor (`&name`) or an alias (`*name`): such a mark after a blank, a flow
/// bracket, a comma or a colon. Marks inside quoted strings count too: a false alarm only means no parsing.
fn has_anchors_or_aliases(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        (c == b'&' || c == b'*')
            && b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_' || *n == b'-')
            && (i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_previewed_by_their_kind_and_never_as_markup() {
        assert_eq!(kind_of("plots/feature_importance.PNG"), Kind::Image("image/png"));
        assert_eq!(kind_of("model/MLmodel"), Kind::MlModel);
        assert_eq!(kind_of("data/train.tsv"), Kind::Table(b'\t'));
        assert_eq!(kind_of("data/iris.parquet"), Kind::Parquet);
        let page = parquet_table(b"PAR1 not really".to_vec()).into_string();
        assert!(page.contains("Not readable as Parquet"), "{page}");
        assert_eq!(kind_of("report.html"), Kind::Text, "HTML is shown as text");
        assert_eq!(kind_of("logo.svg"), Kind::Text, "so is SVG");
        assert_eq!(kind_of("model.pkl"), Kind::None);
    }

    #[test]
    fn a_table_shows_its_first_rows_and_drops_a_cut_last_line() {
        let page = table(b"a,b\n1,<x>\n2,3\n4,", b',', true).into_string();
        assert!(page.contains("<th>a</th>") && page.contains("<td>&lt;x&gt;</td>") && page.contains("<td>2</td>"));
        assert!(!page.contains("<td>4</td>"), "the cut line is not shown: {page}");
        let page = table(b"a\tb\n1\t2\n", b'\t', false).into_string();
        assert!(page.contains("<td>2</td>") && page.contains("First 1 rows"));
    }

    #[test]
    fn an_mlmodel_with_aliases_is_shown_as_text_not_expanded() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"]) {
            bomb.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        let page = mlmodel(&bomb).into_string();
        assert!(page.contains("pre class=\"preview\"") && page.contains("*i,*i") && !page.contains("Flavors"));
        assert!(!has_anchors_or_aliases("signature:\n  inputs: '[{\"type\": \"double\"}]'\nnote: a*b & c\n"));
    }

    #[test]
    fn an_mlmodel_shows_its_flavors_and_signature() {
        let text = "flavors:\n  python_function:\n    loader_module: mlflow.lightgbm\n  lightgbm:\n    lgb_version: 4.6.0\n\
                    signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"sepal length (cm)\", \"required\": true}]'\n  \
                    outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1, 3]}}]'\n";
        let page = mlmodel(text).into_string();
        assert!(page.contains("<code>python_function</code>") && page.contains("<code>lightgbm</code>"), "{page}");
        assert!(page.contains("sepal length (cm)") && page.contains("double"));
        assert!(page.contains("tensor (float64)") && page.contains("[-1,3]"), "{page}");
    }
}
