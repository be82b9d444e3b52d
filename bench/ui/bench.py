"""Orchard's web UI vs MLflow 3.17's, side by side on this machine, on the same data, in the same headless Chromium.

Run it with bench/ui/run.sh (release build of Orchard, the project's pinned mlflow, Debian's chromium). The data,
generated from one seed and identical on both sides:

  - one experiment with N runs (default 100,000), each with 20 params (p0…p19) and 20 metrics: `accuracy`,
    `loss` and 18 keys drawn from a pool of 10,000 (so the experiment holds ~10,000 distinct metric keys);
  - the newest 100 of them also hold 100,000 steps of `loss`.

Orchard is filled through its REST API. MLflow is filled by SQL into the SQLite database its own `mlflow server`
created (through MLflow's REST API the same data would take hours); its server is then restarted on that file.

Measured, for each side:

  - runs page, server: Orchard's `/experiments/{id}` (the whole HTML page, default columns), and MLflow's
    `runs/search` call that fills its table (100 runs, as its UI asks), median of warm requests;
  - runs page in Chromium: first contentful paint and the time until the newest run's name is on screen (from
    navigation start, Performance API, a fresh profile each time);
  - runs page weight: HTML + CSS + JS as transferred (compressed where the server compresses), cold cache;
  - chart data for the 100 long runs × 100,000 steps: Orchard's `/charts/series` at 1,000 px (min and max of every
    bucket), MLflow's `get-history-bulk-interval` at its UI's 320 sampled points (and at 1,000);
  - compare 1,000 runs in Chromium: time until the last run's name is on the page.

It prints a Markdown table and writes it to bench/results/ui.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid

import requests

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench" / "tracking"))
from bench import start_mlflow, start_orchard  # noqa: E402  (the tracking benchmark's server starters)

PARAMS, METRICS, KEY_POOL = 20, 20, 10_000
LONG_RUNS, LONG_STEPS = 100, 100_000
T0 = 1_764_000_000_000  # the first run's start, ms


def plan(n_runs: int):
    """Each run's name, start, params and latest metrics, from one seed."""
    rng = random.Random(7)
    for i in range(n_runs):
        params = {f"p{j}": str(rng.choice([0.01, 0.03, 0.1, 0.3]) if j == 0 else rng.randint(1, 64)) for j in range(PARAMS)}
        keys = ["accuracy", "loss"] + [f"metric_{k:04d}" for k in rng.sample(range(KEY_POOL), METRICS - 2)]
        metrics = {k: rng.random() for k in keys}
        yield {"name": f"bench-run-{i:06d}", "start": T0 + i * 1000, "params": params, "metrics": metrics,
               "long": i >= n_runs - LONG_RUNS}


def history(run_index: int) -> list[float]:
    """A long run's `loss`: a decaying curve with noise and a few spikes (the points a chart must not lose)."""
    rng = random.Random(run_index)
    values = [1.0 / (1 + s / 5000) + rng.random() * 0.01 for s in range(LONG_STEPS)]
    for s in rng.sample(range(LONG_STEPS), 5):
        values[s] = 5.0
    return values


# --- filling Orchard (REST) and MLflow (SQL) ---------------------------------------------------------------------


def fill_orchard(url: str, n_runs: int) -> tuple[str, list[str], list[str]]:
    api = f"{url}/api/2.0/mlflow"
    exp = requests.post(f"{api}/experiments/create", json={"name": "ui-bench"}, timeout=60).json()["experiment_id"]
    local = __import__("threading").local()

    def session():
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def one(item):
        i, run = item
        s = session()
        r = s.post(f"{api}/runs/create", json={"experiment_id": exp, "run_name": run["name"], "start_time": run["start"],
                                               "user_id": "bench"}, timeout=120)
        r.raise_for_status()
        run_id = r.json()["run"]["info"]["run_id"]
        if run["long"]:
            values = history(i)
            for b in range(0, LONG_STEPS, 1000):
                batch = [{"key": "loss", "value": values[s_], "timestamp": run["start"] + s_, "step": s_} for s_ in range(b, b + 1000)]
                s.post(f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": batch}, timeout=120).raise_for_status()
        metrics = [{"key": k, "value": v, "timestamp": run["start"] + LONG_STEPS, "step": LONG_STEPS if run["long"] else 0}
                   for k, v in run["metrics"].items()]
        params = [{"key": k, "value": v} for k, v in run["params"].items()]
        s.post(f"{api}/runs/log-batch", json={"run_id": run_id, "params": params, "metrics": metrics}, timeout=120).raise_for_status()
        s.post(f"{api}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": run["start"] + 600_000},
               timeout=120).raise_for_status()
        return run_id

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, enumerate(plan(n_runs)), chunksize=64))
    return exp, ids[-LONG_RUNS:], ids


def fill_mlflow(url: str, db: pathlib.Path, n_runs: int) -> tuple[str, list[str], list[str]]:
    api = f"{url}/api/2.0/mlflow"
    exp = requests.post(f"{api}/experiments/create", json={"name": "ui-bench"}, timeout=60).json()["experiment_id"]
    # MLflow 3 opens a GenAI overview unless the experiment says it holds model training.
    requests.post(f"{api}/experiments/set-experiment-tag",
                  json={"experiment_id": exp, "key": "mlflow.experimentKind", "value": "custom_model_development"},
                  timeout=60).raise_for_status()
    artifact_root = requests.get(f"{api}/experiments/get", params={"experiment_id": exp}, timeout=60).json()["experiment"]["artifact_location"]
    con = sqlite3.connect(db)
    ids, long_ids = [], []
    runs, params, metrics, latest, tags = [], [], [], [], []
    for i, run in enumerate(plan(n_runs)):
        rid = uuid.UUID(int=random.Random(i).getrandbits(128)).hex
        ids.append(rid)
        runs.append((rid, run["name"], "UNKNOWN", "", "", "bench", "FINISHED", run["start"], run["start"] + 600_000, "",
                     "active", f"{artifact_root}/{rid}/artifacts", exp))
        params += [(k, v, rid) for k, v in run["params"].items()]
        tags += [("mlflow.runName", run["name"], rid), ("mlflow.user", "bench", rid)]
        step = LONG_STEPS if run["long"] else 0
        for k, v in run["metrics"].items():
            metrics.append((k, v, run["start"] + LONG_STEPS, rid, step, 0))
            latest.append((k, v, run["start"] + LONG_STEPS, step, 0, rid))
        if run["long"]:
            long_ids.append(rid)
            metrics += [("loss", v, run["start"] + s, rid, s, 0) for s, v in enumerate(history(i))]
        if len(metrics) > 500_000 or i == n_runs - 1:
            with con:
                con.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                                "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
                con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
                con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
                con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics)
                con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", latest)
            runs, params, metrics, latest, tags = [], [], [], [], []
    con.close()
    return exp, long_ids, ids


# --- measuring -------------------------------------------------------------------------------------------------


def median_ms(fn, repeats: int) -> float | None:
    """Median of `repeats` warm calls. A call slower than 10 s is timed once (repeating it would take the
    benchmark hours); one that does not answer within the 300 s timeout gives None ("did not answer")."""
    times = []
    try:
        t = time.perf_counter()
        fn()  # warm-up
        first = (time.perf_counter() - t) * 1000
        if first > 10_000:
            return first
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
    except requests.exceptions.Timeout:
        return None
    return statistics.median(times)


def get_ok(session: requests.Session, url: str, **kw) -> requests.Response:
    r = session.get(url, timeout=300, **kw)
    r.raise_for_status()
    return r


# Installed before any page script: records when `window.__marker` first shows up in the document's text.
WATCH = """
window.__seenAt = null;
new MutationObserver((records, obs) => {
  const want = window.__marker || sessionStorage.getItem('marker');
  if (!want || window.__seenAt !== null) return;
  for (const r of records) {
    const nodes = r.type === 'characterData' ? [r.target] : r.addedNodes;
    for (const n of nodes) {
      if ((n.textContent || '').includes(want)) { window.__seenAt = performance.now(); obs.disconnect(); return; }
    }
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def browser(profile: pathlib.Path):
    import os
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                f"--user-data-dir={profile}", "--window-size=1600,1000"]:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(600)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    return driver


def in_browser(url: str, marker: str, tmp: pathlib.Path, timeout: float = 300) -> dict:
    """Opens `url` in a fresh profile: first contentful paint, when `marker` appeared, and the bytes of HTML, CSS
    and JS transferred."""
    profile = pathlib.Path(tempfile.mkdtemp(dir=tmp))
    driver = browser(profile)
    try:
        # The marker goes in before the page's own scripts run: through the session storage of the origin.
        origin = urllib.parse.urlsplit(url)
        driver.get(f"{origin.scheme}://{origin.netloc}/health")
        driver.execute_script("sessionStorage.setItem('marker', arguments[0])", marker)
        driver.get(url)
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = driver.execute_script(
                "return window.__seenAt ?? (document.body && document.body.textContent.includes(arguments[0]) ? -1 : null)", marker)
            if seen is not None:
                break
            time.sleep(0.05)
        fcp = driver.execute_script(
            "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null")
        weight = driver.execute_script("""
            const nav = performance.getEntriesByType('navigation')[0];
            let total = nav.transferSize;
            for (const r of performance.getEntriesByType('resource'))
              if (['script', 'link', 'css'].includes(r.initiatorType) || /\\.(js|css)(\\?|$)/.test(r.name)) total += r.transferSize;
            return total""")
        return {"fcp_ms": fcp, "seen_ms": None if seen in (None, -1) else seen, "bytes": weight}
    finally:
        driver.quit()


def measure(side: str, url: str, exp: str, long_ids: list[str], ids: list[str], tmp: pathlib.Path, repeats: int) -> dict:
    s = requests.Session()
    out: dict = {}
    newest = f"bench-run-{len(ids) - 1:06d}"
    if side == "orchard":
        out["runs_server_ms"] = median_ms(lambda: get_ok(s, f"{url}/experiments/{exp}"), repeats)
        sorted_url = f"{url}/experiments/{exp}?order=metrics.accuracy+DESC"
        out["runs_sorted_server_ms"] = median_ms(lambda: get_ok(s, sorted_url), repeats)
        page = in_browser(f"{url}/experiments/{exp}", newest, tmp)
        qs = "&".join(f"run={r}" for r in long_ids)
        chart_url = f"{url}/charts/series?{qs}&key=loss&x=step&width=1000"
        out["chart_ms"] = median_ms(lambda: get_ok(s, chart_url, headers={"Accept-Encoding": "identity"}), repeats)
        out["chart_gzip_ms"] = median_ms(lambda: get_ok(s, chart_url, headers={"Accept-Encoding": "gzip"}), repeats)
        body = get_ok(s, f"{url}/charts/series?{qs}&key=loss&x=step&width=1000").json()
        out["chart_points"] = sum(len(x["x"]) if "x" in x else len(x.get("points", [])) for x in body["series"])
        compare = in_browser(f"{url}/compare?" + "&".join(f"run={r}" for r in ids[-1000:]), f"bench-run-{len(ids) - 1000:06d}", tmp)
    else:
        body = {"experiment_ids": [exp], "max_results": 100, "order_by": ["attributes.start_time DESC"]}
        api = f"{url}/ajax-api/2.0/mlflow"
        out["runs_server_ms"] = median_ms(lambda: s.post(f"{api}/runs/search", json=body, timeout=300).raise_for_status(), repeats)
        sorted_body = {**body, "order_by": ["metrics.accuracy DESC"]}
        out["runs_sorted_server_ms"] = median_ms(lambda: s.post(f"{api}/runs/search", json=sorted_body, timeout=300).raise_for_status(), repeats)
        page = in_browser(f"{url}/#/experiments/{exp}/runs", newest, tmp)
        qs = "&".join(f"run_ids={r}" for r in long_ids)
        out["chart_ms"] = median_ms(lambda: get_ok(s, f"{api}/metrics/get-history-bulk-interval?{qs}&metric_key=loss&max_results=320"), repeats)
        out["chart_gzip_ms"] = out["chart_ms"]  # MLflow's server does not compress
        out["chart_1000_ms"] = median_ms(lambda: get_ok(s, f"{api}/metrics/get-history-bulk-interval?{qs}&metric_key=loss&max_results=1000"), repeats)
        out["chart_points"] = len(get_ok(s, f"{api}/metrics/get-history-bulk-interval?{qs}&metric_key=loss&max_results=320").json().get("metrics", []))
        runs_json = urllib.parse.quote(json.dumps(ids[-1000:]))
        compare = in_browser(f"{url}/#/compare-runs?runs={runs_json}&experiments={urllib.parse.quote(json.dumps([exp]))}",
                             f"bench-run-{len(ids) - 1000:06d}", tmp)
    out["runs_fcp_ms"], out["runs_table_ms"], out["runs_bytes"] = page["fcp_ms"], page["seen_ms"], page["bytes"]
    out["compare_ms"] = compare["seen_ms"]
    return out


def fmt(v, unit="ms"):
    if v is None:
        return "no answer in 300 s"
    if unit == "KB":
        return f"{v / 1024:,.0f} KB"
    return f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orchard", default=str(ROOT / "target" / "release" / "orchard"))
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--skip-orchard", action="store_true",
                    help="reuse Orchard's figures of the last run (bench/results/ui-orchard.json)")
    args = ap.parse_args()
    assert args.runs >= 1000, "the compare measurement needs 1,000 runs"

    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        saved = ROOT / "bench" / "results" / "ui-orchard.json"
        if args.skip_orchard:
            results["orchard"] = json.loads(saved.read_text())
        else:
            (tmp / "o").mkdir()
            server = start_orchard(args.orchard, tmp / "o")
            try:
                t = time.perf_counter()
                exp, long_ids, ids = fill_orchard(server.url, args.runs)
                print(f"orchard filled in {time.perf_counter() - t:.0f} s", file=sys.stderr)
                results["orchard"] = measure("orchard", server.url, exp, long_ids, ids, tmp, args.repeats)
            finally:
                server.stop()
            saved.parent.mkdir(exist_ok=True)
            saved.write_text(json.dumps(results["orchard"]))
        print(json.dumps(results["orchard"]), file=sys.stderr)
        if not args.skip_mlflow:
            (tmp / "m").mkdir()
            server = start_mlflow(tmp / "m", None)
            t = time.perf_counter()
            try:
                exp, long_ids, ids = fill_mlflow(server.url, tmp / "m" / "mlflow.db", args.runs)
            finally:
                server.stop()
            print(f"mlflow filled in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            server = start_mlflow(tmp / "m", None)
            try:
                results["mlflow"] = measure("mlflow", server.url, exp, long_ids, ids, tmp, args.repeats)
            finally:
                server.stop()
            print(json.dumps(results["mlflow"]), file=sys.stderr)

    o, m = results["orchard"], results.get("mlflow", {})
    rows = [
        ("runs page, server (Orchard: whole HTML page; MLflow: its runs/search call)", "runs_server_ms", "ms", "< 50 ms"),
        ("runs page sorted by a metric, server", "runs_sorted_server_ms", "ms", ""),
        ("runs page, first contentful paint (Chromium)", "runs_fcp_ms", "ms", "< 300 ms"),
        ("runs page, until the newest run is on screen (Chromium)", "runs_table_ms", "ms", ""),
        ("runs page, HTML + CSS + JS transferred", "runs_bytes", "KB", "< 150 KB"),
        ("chart data, 100 runs × 100,000 steps (Orchard: 1,000 px, min+max per bucket; MLflow: 320 samples)", "chart_ms", "ms", "< 100 ms"),
        ("the same chart data, gzip-compressed as a browser asks (MLflow does not compress)", "chart_gzip_ms", "ms", ""),
        ("compare 1,000 runs, until rendered (Chromium)", "compare_ms", "ms", "< 1 s"),
    ]
    lines = [f"UI benchmark: {args.runs:,} runs × {PARAMS} params × {METRICS} metrics (~{KEY_POOL:,} distinct metric keys), "
             f"{LONG_RUNS} runs × {LONG_STEPS:,} steps", "",
             "| measure | Orchard | MLflow 3.17 | MLflow / Orchard | target |", "|---|---:|---:|---:|---|"]
    for label, key, unit, target in rows:
        ov, mv = o.get(key), m.get(key)
        ratio = f"{mv / ov:,.1f}×" if ov and mv else "–"
        lines.append(f"| {label} | {fmt(ov, unit)} | {fmt(mv, unit) if m else '–'} | {ratio} | {target} |")
    if m:
        lines.append(f"| MLflow chart data at 1,000 samples | | {fmt(m.get('chart_1000_ms'))} | | |")
    lines.append(f"\nPoints in the chart answer: Orchard {o['chart_points']:,}; MLflow {m.get('chart_points', 0):,}.")
    report = "\n".join(lines)
    print(report)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "ui.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
