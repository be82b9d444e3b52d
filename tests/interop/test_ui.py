"""The web UI in a real headless Chromium (Debian's chromium and chromedriver, driven by selenium), with data
logged by the real `mlflow` client (LightGBM on iris with `mlflow.lightgbm.autolog()`): a person's path from `/`
to an experiment's runs (filter, sort, columns, nested runs) and to a run's params and metrics, a metric's chart
(the points drawn read from the page: a spike among 10,000 points survives), comparing runs (only differences,
overlaid charts), the experiment forms, previews of a logged image, CSV and model, and hostile strings in every
field that must show as text and never run. Each test saves a screenshot of its page into target/ui-screenshots/.
SQLite and PostgreSQL."""

from __future__ import annotations

import os
import pathlib
import shutil

import mlflow
import pytest
import requests

SHOTS = pathlib.Path(__file__).resolve().parents[2] / "target" / "ui-screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
    reason="chromium and chromedriver are installed by scripts/test.sh (apt)",
)

# Payloads that would run if any value reached the page unescaped (or if the CSP allowed inline script).
XSS = '"><img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # never let selenium try to download a browser or a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1000"]:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def shot(browser, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def no_script_ran(browser):
    assert browser.execute_script("return window.__xss === undefined"), "an injected script ran"


@pytest.fixture
def iris_runs(orchard, mlflow_client):
    """Three LightGBM trainings on iris with autolog, each with a nested evaluation run."""
    import lightgbm as lgb
    from sklearn.datasets import load_iris

    mlflow.set_tracking_uri(orchard.url)
    exp_id = mlflow_client.create_experiment("iris-ui")
    x, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.lightgbm.autolog(log_models=False, log_datasets=False)
    runs = []
    for lr in [0.3, 0.1, 0.03]:
        with mlflow.start_run(experiment_id=exp_id, run_name=f"train-lr{lr}") as run:
            data = lgb.Dataset(x, label=y)
            lgb.train({"objective": "multiclass", "num_class": 3, "learning_rate": lr, "verbose": -1},
                      data, num_boost_round=5, valid_sets=[data], valid_names=["train"])
            with mlflow.start_run(experiment_id=exp_id, run_name=f"evaluate-lr{lr}", nested=True):
                mlflow.log_metric("accuracy", 0.9 + lr / 10)
            runs.append(run.info.run_id)
    mlflow.lightgbm.autolog(disable=True)
    return exp_id, runs


def test_from_the_experiments_to_a_run(orchard, mlflow_client, iris_runs, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def arrived(fragment):
        WebDriverWait(browser, 10).until(lambda d: fragment in d.current_url)

    exp_id, runs = iris_runs
    browser.get(orchard.url + "/")
    assert browser.title == "Experiments · Orchard"
    row = browser.find_element(By.XPATH, "//tr[td/a[text()='iris-ui']]")
    assert row.find_elements(By.TAG_NAME, "td")[2].text == "6", "three trainings and three nested evaluations"
    shot(browser, "experiments")
    row.find_element(By.LINK_TEXT, "iris-ui").click()
    arrived(f"/experiments/{exp_id}")

    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td.first a")]
    assert sorted(names) == sorted([f"train-lr{lr}" for lr in [0.3, 0.1, 0.03]] + [f"evaluate-lr{lr}" for lr in [0.3, 0.1, 0.03]])
    # Each evaluation sits right under its training, marked as a child.
    for lr in [0.3, 0.1, 0.03]:
        assert names.index(f"evaluate-lr{lr}") == names.index(f"train-lr{lr}") + 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr.child")) == 3
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#runs thead th")]
    assert "params.learning_rate" in headers, "the param that differs is a default column"
    assert "params.objective" not in headers, "a param equal in every run is not"
    shot(browser, "runs")

    # Filter with MLflow's grammar, through the form.
    box = browser.find_element(By.NAME, "filter")
    box.send_keys("params.learning_rate = '0.1'")
    box.submit()
    arrived("filter=")
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td.first a")] == ["train-lr0.1"]
    # A mistake is shown inline with the column it names, and the URL holds the filter.
    browser.get(orchard.url + f"/experiments/{exp_id}?filter=metrics.accuracy+%3E")
    assert "column" in browser.find_element(By.CSS_SELECTOR, ".error").text

    # Sort by a metric through its header; choose columns.
    browser.get(orchard.url + f"/experiments/{exp_id}?col=params.learning_rate&col=metrics.accuracy")
    assert [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#runs thead th")][6:] == ["params.learning_rate", "metrics.accuracy"]
    browser.find_element(By.LINK_TEXT, "metrics.accuracy").click()
    arrived("order=")
    accuracies = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr td:last-child") if td.text]
    assert accuracies == sorted(accuracies, reverse=True) and len(accuracies) == 3, accuracies
    assert "order=metrics.accuracy+DESC" in browser.current_url

    # Keyboard: j moves to the first run, Enter opens it.
    browser.get(orchard.url + f"/experiments/{exp_id}")
    first = browser.find_elements(By.CSS_SELECTOR, "#runs tbody td.first a")[0].text
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    assert browser.switch_to.active_element.text == first
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 5).until(lambda d: "/runs/" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(first)

    # The links MLflow's client prints (`/#/experiments/<id>/runs/<id>`) open the same run here.
    browser.get(orchard.url + f"/#/experiments/{exp_id}/runs/{runs[0]}")
    WebDriverWait(browser, 5).until(lambda d: d.current_url.endswith(f"/runs/{runs[0]}"))

    # A run's page shows what the client logged.
    browser.get(orchard.url + f"/experiments/{exp_id}")
    browser.find_element(By.LINK_TEXT, "train-lr0.1").click()
    arrived(f"/runs/{runs[1]}")
    run = mlflow_client.get_run(runs[1])
    params = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
              for r in browser.find_elements(By.CSS_SELECTOR, "#params tr")}
    assert params["learning_rate"] == run.data.params["learning_rate"] == "0.1"
    metric_rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].get_attribute("title")
                   for r in browser.find_elements(By.CSS_SELECTOR, "#metrics tr")}
    assert set(metric_rows) == set(run.data.metrics) and "train-multi_logloss" in metric_rows
    for key, value in run.data.metrics.items():
        assert float(metric_rows[key]) == value, key
    shot(browser, "run")


def test_the_experiment_forms(orchard, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(orchard.url + "/")
    browser.find_element(By.XPATH, "//summary[text()='New experiment']").click()
    browser.find_element(By.NAME, "name").send_keys("made in the browser")
    create = browser.find_element(By.XPATH, "//button[text()='Create']")
    create.click()
    WebDriverWait(browser, 10).until(lambda d: "/experiments/" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "made in the browser"
    exp_id = browser.current_url.rsplit("/", 1)[-1]
    assert requests.get(f"{orchard.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id}).json()["experiment"]["name"] == "made in the browser"

    def submit(button):
        """Clicks a form's button and waits for the page the server answers with. While the page is replaced,
        chromedriver may answer a question about the old button with an error of its own rather than "stale":
        that is asked again."""
        from selenium.common.exceptions import WebDriverException
        button.click()
        WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(until.staleness_of(button))

    browser.get(orchard.url + "/")
    row = browser.find_element(By.XPATH, "//tr[td/a[text()='made in the browser']]")
    submit(row.find_element(By.XPATH, ".//button[text()='Delete']"))
    assert not browser.find_elements(By.XPATH, "//a[text()='made in the browser']")
    browser.find_element(By.LINK_TEXT, "Deleted experiments").click()
    submit(browser.find_element(By.XPATH, "//tr[td/a[text()='made in the browser']]//button[text()='Restore']"))
    assert requests.get(f"{orchard.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id}).json()["experiment"]["lifecycle_stage"] == "active"
    shot(browser, "deleted-experiments")

    # A form posted from another site changes nothing.
    r = requests.post(f"{orchard.url}/experiments/{exp_id}/delete", headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert r.status_code == 403
    r = requests.post(f"{orchard.url}/experiments/create", data={"name": "forged"}, allow_redirects=False)
    assert r.status_code == 403, "no Origin nor Referer: refused"
    assert requests.get(f"{orchard.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id}).json()["experiment"]["lifecycle_stage"] == "active"


def test_hostile_strings_show_as_text_and_never_run(orchard, mlflow_client, browser, tmp_path):
    from selenium.webdriver.common.by import By

    exp_id = mlflow_client.create_experiment(XSS)
    run = mlflow_client.create_run(exp_id, run_name=XSS, tags={"xss": XSS, "mlflow.note.content": XSS})
    mlflow_client.log_param(run.info.run_id, "p" + "x", XSS)
    mlflow_client.log_metric(run.info.run_id, "m", 1.0)
    f = tmp_path / "a.txt"
    f.write_text("x")
    mlflow_client.log_artifact(run.info.run_id, str(f), "javascript:alert(1)")
    for path in ["/", f"/experiments/{exp_id}", f"/experiments/{exp_id}?col=params.px&col=tags.{XSS}",
                 f"/experiments/{exp_id}?filter={XSS}", f"/runs/{run.info.run_id}"]:
        browser.get(orchard.url + path)
        no_script_ran(browser)
        assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script"), path
    assert XSS in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_element(By.CSS_SELECTOR, "#params td:nth-child(2)").text == XSS
    link = browser.find_element(By.XPATH, "//a[contains(text(), 'javascript:alert(1)')]")
    assert link.get_attribute("href").startswith(orchard.url + "/runs/"), "an artifact folder named javascript: is a path"
    shot(browser, "hostile")
    headers = requests.get(orchard.url + f"/runs/{run.info.run_id}").headers
    assert "script-src 'self'" in headers["content-security-policy"] and "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_a_chart_holds_the_logged_points_and_every_spike(orchard, mlflow_client, iris_runs, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    exp_id, runs = iris_runs
    # A long history with one spike between any fixed sample's points (MLflow's 320 samples would miss it).
    run = mlflow_client.create_run(exp_id, run_name="long")
    from mlflow.entities import Metric
    points = [Metric("loss", 1.0 / (i + 1) if i != 4321 else 50.0, 1_700_000_000_000 + 1000 * i, i) for i in range(10_000)]
    for start in range(0, len(points), 1000):
        mlflow_client.log_batch(run.info.run_id, metrics=points[start:start + 1000])

    browser.get(orchard.url + f"/runs/{run.info.run_id}")
    chart = browser.find_element(By.CSS_SELECTOR, "figure.chart[data-key='loss']")
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    WebDriverWait(browser, 10).until(lambda d: chart.get_attribute("data-points"))
    drawn = int(chart.get_attribute("data-points"))
    assert 100 < drawn <= 4 * 2000, f"{drawn} points drawn for a chart of {chart.size['width']} px"
    assert chart.find_elements(By.CSS_SELECTOR, ".plot canvas"), "uPlot drew on a canvas"
    chart.find_element(By.CSS_SELECTOR, "details.points summary").click()
    cells = [td.text for td in chart.find_elements(By.CSS_SELECTOR, ".points tbody td")]
    pairs = dict(zip(cells[0::2], cells[1::2]))
    assert pairs["4321"] == "50", "the spike is among the points drawn"
    assert pairs["0"] == "1" and pairs["9999"] == str(1.0 / 10_000)
    assert "of 10000 points" in chart.find_element(By.CSS_SELECTOR, ".points caption").text
    shot(browser, "run-chart")

    # The x axis and the log scale are settings of the page, kept in its URL.
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element(By.NAME, "x")).select_by_value("relative")
    WebDriverWait(browser, 5).until(lambda d: "x=relative" in d.current_url)

    def relative_pairs(d):
        cells = [td.get_attribute("textContent") for td in chart.find_elements(By.CSS_SELECTOR, ".points tbody td")]
        pairs = dict(zip(cells[0::2], cells[1::2]))
        return pairs if "4321000" in pairs else None
    # The table is redrawn when the new data arrives: a cell read mid-redraw is stale, and read again.
    from selenium.common.exceptions import StaleElementReferenceException
    pairs = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(relative_pairs)
    assert pairs["4321000"] == "50" and pairs["0"] == "1", "x is milliseconds since the first point"
    browser.refresh()
    assert browser.find_element(By.CSS_SELECTOR, "select[name=x] option[value=relative]").is_selected()

    # Values logged at one step (log_metric without a step) are all drawn, the spike among them.
    burst = [Metric("burst", v, 1_700_000_000_000 + k, 0) for k, v in enumerate([1.0, 1000.0, 1.0])]
    mlflow_client.log_batch(run.info.run_id, metrics=burst)
    browser.get(orchard.url + f"/runs/{run.info.run_id}")
    chart = browser.find_element(By.CSS_SELECTOR, "figure.chart[data-key='burst']")
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    drawn = WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return arguments[0]._plot && arguments[0]._plot.data[1].filter(v => v !== null)", chart))
    assert sorted(drawn) == [1.0, 1.0, 1000.0], drawn

    # A training run's charts overlay nothing but its own series; each logged metric has one.
    browser.get(orchard.url + f"/runs/{runs[0]}")
    keys = {f.get_attribute("data-key") for f in browser.find_elements(By.CSS_SELECTOR, "figure.chart")}
    assert keys == set(mlflow_client.get_run(runs[0]).data.metrics)
    no_script_ran(browser)


def test_compare_runs_with_only_differences_and_overlaid_charts(orchard, mlflow_client, iris_runs, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    exp_id, runs = iris_runs
    browser.get(orchard.url + f"/experiments/{exp_id}")
    for run_id in runs[:2]:
        browser.find_element(By.CSS_SELECTOR, f"input[type=checkbox][name=run][value='{run_id}']").click()
    browser.find_element(By.XPATH, "//button[text()='Compare selected runs']").click()
    WebDriverWait(browser, 5).until(lambda d: "/compare?" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Comparing 2 runs"

    def rows(table_id):
        return [tr.find_element(By.CSS_SELECTOR, "td.first").text for tr in browser.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]
    assert {"learning_rate", "objective"} <= set(rows("compare-params"))
    browser.find_element(By.LINK_TEXT, "Only differences").click()
    WebDriverWait(browser, 5).until(lambda d: "diff=1" in d.current_url)
    params = rows("compare-params")
    assert "learning_rate" in params and "objective" not in params, params
    cells = browser.find_elements(By.XPATH, "//table[@id='compare-params']//tr[td[1]='learning_rate']/td")
    names = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#compare-params thead th")][1:]
    assert dict(zip(names, [c.text for c in cells[1:]])) == {"train-lr0.3": "0.3", "train-lr0.1": "0.1"}

    # Each metric's chart overlays both runs, labelled by name.
    chart = browser.find_element(By.CSS_SELECTOR, "figure.chart[data-key='train-multi_logloss']")
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    WebDriverWait(browser, 10).until(lambda d: chart.get_attribute("data-points"))
    assert int(chart.get_attribute("data-points")) == 2 * 5, "five boosting rounds of each run"
    legend = [e.text for e in chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-label")]
    assert legend[1:] == names, legend
    # A scatter of the differing param against a metric, and parallel coordinates: a mark per run.
    scatter = browser.find_element(By.CSS_SELECTOR, "svg.scatter")
    assert scatter.get_attribute("aria-label") == "metrics.train-multi_logloss against params.learning_rate"
    assert scatter.get_attribute("data-dots") == "2"
    assert browser.find_element(By.CSS_SELECTOR, "svg.parallel").get_attribute("data-lines") == "2"
    browser.execute_script("window.scrollTo(0, 0)")
    shot(browser, "compare")
    browser.execute_script("document.getElementById('scatter').scrollIntoView()")
    shot(browser, "compare-plots")
    no_script_ran(browser)


def test_previews_of_an_image_a_csv_and_a_model(orchard, mlflow_client, browser, tmp_path):
    import lightgbm as lgb
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.models import infer_signature
    from selenium.webdriver.common.by import By
    from sklearn.datasets import load_iris

    mlflow.set_tracking_uri(orchard.url)
    exp_id = mlflow_client.create_experiment("iris-files")
    x, y = load_iris(return_X_y=True, as_frame=True)
    with mlflow.start_run(experiment_id=exp_id) as run:
        booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, label=y), 3)
        fig, ax = plt.subplots(figsize=(4, 3))
        lgb.plot_importance(booster, ax=ax)
        mlflow.log_figure(fig, "feature_importance.png")
        mlflow.log_text(x.head(20).to_csv(index=False), "data/train.csv")
        # The seed keeps its data as Parquet (pandas' default: snappy); zstd is a codec the preview does not read.
        x.assign(species=load_iris().target_names[y]).to_parquet(tmp_path / "iris.parquet")
        mlflow.log_artifact(str(tmp_path / "iris.parquet"), "data")
        x.to_parquet(tmp_path / "iris-zstd.parquet", compression="zstd")
        mlflow.log_artifact(str(tmp_path / "iris-zstd.parquet"), "data")
        info = mlflow.lightgbm.log_model(booster, name="model", signature=infer_signature(x, booster.predict(x)))
        # MLflow 3 keeps a model with its logged model; MLflow 2 clients put it in the run's folder, as here.
        mlflow.log_artifacts(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "m")), "model")
    run_id = run.info.run_id

    browser.get(orchard.url + f"/runs/{run_id}")
    browser.find_element(By.LINK_TEXT, "feature_importance.png").click()
    img = browser.find_element(By.CSS_SELECTOR, "#preview img.preview")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100, "the image loads"
    shot(browser, "preview-image")

    browser.get(orchard.url + f"/runs/{run_id}?path=data&file=data%2Ftrain.csv")
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#preview-table thead th")]
    assert headers == list(x.columns)
    first = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#preview-table tbody tr:first-child td")]
    assert [float(v) for v in first] == list(x.iloc[0])

    browser.get(orchard.url + f"/runs/{run_id}?path=data&file=data%2Firis.parquet")
    schema = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in browser.find_elements(By.CSS_SELECTOR, "#parquet-schema tbody tr")]
    assert [c[0] for c in schema] == list(x.columns) + ["species"] and schema[0][1] == "Float64" and schema[4][1] in ("Utf8", "LargeUtf8", "Utf8View")
    assert "5 columns, 150 rows" in browser.find_element(By.CSS_SELECTOR, "details.schema summary").text
    first = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#preview-table tbody tr:first-child td")]
    assert [float(v) for v in first[:4]] == list(x.iloc[0]) and first[4] == "setosa"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#preview-table tbody tr")) == 100
    browser.execute_script("document.getElementById('preview').scrollIntoView()")
    shot(browser, "preview-parquet")
    browser.get(orchard.url + f"/runs/{run_id}?path=data&file=data%2Firis-zstd.parquet")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#parquet-schema tbody tr")) == 4, "the schema still shows"
    assert "cannot be read here" in browser.find_element(By.CSS_SELECTOR, "#preview .error").text

    # A logged model: find its MLmodel by following the folders, as a person would.
    browser.get(orchard.url + f"/runs/{run_id}")
    browser.find_element(By.LINK_TEXT, "▸ model/").click()
    browser.find_element(By.LINK_TEXT, "MLmodel").click()
    names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.signature tbody tr td:first-child")]
    assert names[:4] == list(x.columns), names
    shot(browser, "preview-model")

    # The same model as MLflow 3 keeps it: a logged model, reached from the run that made it.
    browser.get(orchard.url + f"/runs/{run_id}")
    browser.find_element(By.LINK_TEXT, info.model_id).click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("model")
    browser.find_element(By.LINK_TEXT, "MLmodel").click()
    names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.signature tbody tr td:first-child")]
    assert names[:4] == list(x.columns), names
    shot(browser, "logged-model")
    browser.get(orchard.url + f"/experiments/{exp_id}/models")
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#logged-models td.first a")] == ["model"]
    no_script_ran(browser)


def test_a_runs_description_and_tags_are_edited_in_the_page(orchard, mlflow_client, browser):
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(until):
        """Waits on the page the server answers a form with (elements of the page before it go stale)."""
        return WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(until)

    exp_id = mlflow_client.create_experiment("editing")
    run = mlflow_client.create_run(exp_id, run_name="to-edit", tags={"stale": "yes"})
    run_id = run.info.run_id
    browser.get(orchard.url + f"/runs/{run_id}")
    browser.find_element(By.XPATH, "//summary[text()='Edit the description']").click()
    box = browser.find_element(By.NAME, "description")
    box.send_keys("Baseline with " + XSS)
    box.find_element(By.XPATH, "following-sibling::button").click()
    wait(lambda d: d.find_elements(By.CSS_SELECTOR, "p.description"))
    assert mlflow_client.get_run(run_id).data.tags["mlflow.note.content"] == "Baseline with " + XSS
    assert browser.find_element(By.CSS_SELECTOR, "p.description").text == "Baseline with " + XSS

    add = browser.find_element(By.ID, "add-tag")
    add.find_element(By.NAME, "key").send_keys("owner")
    add.find_element(By.NAME, "value").send_keys("vision-team")
    add.find_element(By.XPATH, ".//button[text()='Set tag']").click()
    wait(lambda d: "owner" in [td.text for td in d.find_elements(By.CSS_SELECTOR, "#tags td")])
    browser.find_element(By.XPATH, "//button[@title='Remove the tag stale']").click()
    wait(lambda d: "stale" not in [td.text for td in d.find_elements(By.CSS_SELECTOR, "#tags td")])
    tags = mlflow_client.get_run(run_id).data.tags
    assert tags["owner"] == "vision-team" and "stale" not in tags
    shot(browser, "run-edited")
    no_script_ran(browser)


def test_moving_the_champion_alias_on_the_registry_page_switches_what_the_gateway_serves(orchard, mlflow_client, browser, tmp_path):
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from sklearn.datasets import load_iris
    from test_serving import TOL, iris_model_dir

    mlflow.set_experiment("registry-ui")
    d, _, x = iris_model_dir(tmp_path)
    mlflow_client.create_registered_model("iris", description="Iris species, " + XSS)
    boosters = []
    for rounds in [2, 20]:  # two versions that disagree on a borderline flower
        b = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "seed": 1},
                      lgb.Dataset(x, label=load_iris().target), num_boost_round=rounds)
        b.save_model(str(d / "model.lgb"))
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(d), artifact_path="model")
        mlflow_client.create_model_version("iris", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        boosters.append(b)
    mlflow_client.set_registered_model_alias("iris", "champion", "1")
    row = {"sepal": {"length": 6.0, "width": 2.9}, "petal": {"length": 4.5, "width": 1.5}}
    frame = pd.DataFrame([[6.0, 2.9, 4.5, 1.5, 6.0 * 2.9]], columns=x.columns)

    def served():
        r = requests.post(f"{orchard.url}/models/iris/predict", json=row, timeout=30)
        return r.status_code, r.json()

    def probabilities():
        status, body = served()
        assert status == 200, body
        return [body["probabilities"][k] for k in ["setosa", "versicolor", "virginica"]]
    np.testing.assert_allclose(probabilities(), boosters[0].predict(frame)[0], rtol=0, atol=TOL)

    browser.get(orchard.url + "/")
    browser.find_element(By.LINK_TEXT, "Models").click()
    row_cells = [td.text for td in browser.find_elements(By.XPATH, "//table[@id='models']//tr[td/a[text()='iris']]/td")]
    assert row_cells[1] == "v2" and "@champion → v1" in row_cells[2], row_cells
    shot(browser, "registry")
    browser.find_element(By.LINK_TEXT, "iris").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) == 2
    # Move @champion to version 2 from the page.
    form = browser.find_element(By.ID, "set-alias")
    form.find_element(By.NAME, "alias").send_keys("champion")
    Select(form.find_element(By.NAME, "version")).select_by_value("2")
    form.find_element(By.XPATH, ".//button[text()='Set alias']").click()
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "version 2" in [td.text for td in d.find_elements(By.CSS_SELECTOR, "#aliases td")])
    assert mlflow_client.get_model_version_by_alias("iris", "champion").version == "2"
    np.testing.assert_allclose(probabilities(), boosters[1].predict(frame)[0], rtol=0, atol=TOL)
    shot(browser, "registry-model")

    # Removing it: the gateway has no champion to serve.
    browser.find_element(By.XPATH, "//button[@title='Remove @champion']").click()
    WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: not d.find_elements(By.XPATH, "//button[@title='Remove @champion']"))
    status, body = served()
    assert status == 404 and "@champion" in body["message"]
    no_script_ran(browser)
