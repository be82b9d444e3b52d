"""Orchard's tracking server vs `mlflow server`, side by side on this machine, same SQLite backend, same clients.

Run it with bench/tracking/run.sh (which builds Orchard in release mode and provides the pinned mlflow). It
measures, for Orchard and for MLflow as it starts by default (4 uvicorn workers) and with --workers 1:

  - log-metric throughput and p50/p99 latency under wrk, 16 connections;
  - wall time of sequential `MlflowClient.log_metric` calls (one client, keep-alive);
  - wall time of `log_batch` of 1,000 metrics, 10 times;
  - search_runs latency over N runs × 10 params × 10 metrics with a two-clause filter, through the REST API
    and through GraphQL's `mlflowSearchRuns` (what MLflow's web UI sends);
  - idle RSS (the whole process tree) and start-up time on a fresh database (until /health answers).

It prints a Markdown table with the ratios against the better MLflow configuration of each row.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not become healthy in {timeout}s")


def tree_rss_mb(pid: int, field: str = "Rss") -> float:
    """Resident memory of a process and all its descendants: "Rss" as ps shows it, or "Pss", which shares
    pages mapped by several processes or several times fairly."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Server:
    def __init__(self, name: str, cmd: list[str], url: str, env: dict | None = None):
        self.name, self.url = name, url
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_healthy(url, self.proc)
        self.startup_s = time.monotonic() - t0

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_orchard(binary: str, data: pathlib.Path) -> Server:
    port = free_port()
    cmd = [binary, "server", "--port", str(port), "--backend-store-uri", f"sqlite:///{data}/orchard.db",
           "--artifacts-destination", f"file://{data}/artifacts"]
    return Server("orchard", cmd, f"http://127.0.0.1:{port}", env={"ORCHARD_LOG": "warn"})


def start_mlflow(data: pathlib.Path, workers: int | None) -> Server:
    port = free_port()
    cmd = [str(pathlib.Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{data}/mlflow.db", "--artifacts-destination", str(data / "mlartifacts")]
    name = "mlflow (default, 4 workers)"
    if workers:
        cmd += ["--workers", str(workers)]
        name = f"mlflow --workers {workers}"
    return Server(name, cmd, f"http://127.0.0.1:{port}")


def api(url: str, path: str, body: dict) -> dict:
    r = requests.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=120)
    r.raise_for_status()
    return r.json()


def new_run(url: str, exp_name: str) -> tuple[str, str]:
    try:
        exp = api(url, "experiments/create", {"name": exp_name})["experiment_id"]
    except requests.HTTPError:
        exp = requests.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": exp_name}).json()["experiment"]["experiment_id"]
    run = api(url, "runs/create", {"experiment_id": exp, "start_time": int(time.time() * 1000)})
    return exp, run["run"]["info"]["run_id"]


def bench_wrk(url: str, run_id: str, seconds: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(HERE / "log_metric.lua"), url],
        env={**os.environ, "RUN_ID": run_id}, capture_output=True, text=True, check=True,
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    vals = dict(kv.split("=") for kv in line.split()[1:])
    return {k: float(v) for k, v in vals.items()}


def bench_sequential(url: str, run_id: str, n: int) -> float:
    import mlflow

    client = mlflow.MlflowClient(url)
    t0 = time.perf_counter()
    for i in range(n):
        client.log_metric(run_id, "seq", float(i), step=i)
    return time.perf_counter() - t0


def bench_batch(url: str, run_id: str, batches: int = 10) -> float:
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(url)
    now = int(time.time() * 1000)
    payloads = [[Metric(f"b{j}", random.random(), now, b * 1000 + j) for j in range(1000)] for b in range(batches)]
    t0 = time.perf_counter()
    for metrics in payloads:
        client.log_batch(run_id, metrics=metrics)
    return time.perf_counter() - t0


def populate(url: str, exp_id: str, n_runs: int) -> float:
    """n_runs runs with 10 params (values a–d) and 10 metrics (uniform 0–1), seeded: the same data everywhere."""
    rng = random.Random(42)
    plans = [
        ([{"key": f"p{j}", "value": rng.choice("abcd")} for j in range(10)],
         [{"key": f"m{j}", "value": rng.random(), "timestamp": 1764000000000, "step": 0} for j in range(10)])
        for _ in range(n_runs)
    ]
    session = requests.Session()

    def one(plan):
        params, metrics = plan
        run = session.post(f"{url}/api/2.0/mlflow/runs/create", json={"experiment_id": exp_id, "start_time": int(time.time() * 1000)}, timeout=120)
        run.raise_for_status()
        run_id = run.json()["run"]["info"]["run_id"]
        session.post(f"{url}/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "params": params, "metrics": metrics}, timeout=120).raise_for_status()

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, plans))
    return time.perf_counter() - t0


SEARCH_FILTER = "metrics.m0 > 0.5 AND params.p0 = 'a'"


def timed_posts(url: str, body: dict, marker: bytes, repeats: int) -> tuple[float, int]:
    """Median time until the whole response to `body` has arrived (not decoded: the client's JSON parsing would add
    the same ~20 ms to both sides and hide the servers' difference), and how often `marker` is in the answer."""
    session = requests.Session()
    for _ in range(3):  # warm-up
        session.post(url, json=body, timeout=120).raise_for_status()
    times, count = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = session.post(url, json=body, timeout=120)
        content = r.content
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        count = content.count(marker)
    return statistics.median(times), count


def bench_search(url: str, exp_id: str, max_results: int, repeats: int = 11) -> tuple[float, int]:
    body = {"experiment_ids": [exp_id], "filter": SEARCH_FILTER, "max_results": max_results}
    return timed_posts(f"{url}/api/2.0/mlflow/runs/search", body, b'"run_uuid"', repeats)


# The same search through MLflow's GraphQL API (as its web UI sends it), asking for everything the REST answer
# holds, so that both carry the same runs and fields.
GRAPHQL_SEARCH = """mutation search($input: MlflowSearchRunsInput) { mlflowSearchRuns(input: $input) {
  runs { info { runId runUuid runName experimentId userId status startTime endTime artifactUri lifecycleStage }
         data { metrics { key value timestamp step } params { key value } tags { key value } }
         inputs { datasetInputs { tags { key value } dataset { name digest } } } }
  nextPageToken } }"""


def bench_search_graphql(url: str, exp_id: str, max_results: int, repeats: int = 11) -> tuple[float, int]:
    variables = {"input": {"experimentIds": [exp_id], "filter": SEARCH_FILTER, "maxResults": max_results}}
    body = {"query": GRAPHQL_SEARCH, "variables": variables, "operationName": "search"}
    return timed_posts(f"{url}/graphql", body, b'"runUuid"', repeats)


def measure(server: Server, args, populate_runs: bool, search_exp: str | None = None) -> dict:
    r = {"name": server.name, "startup_s": server.startup_s}
    time.sleep(1)  # let the process settle before reading its idle footprint
    r["idle_rss_mb"] = tree_rss_mb(server.proc.pid)
    exp, run_id = new_run(server.url, "bench")
    r["wrk"] = bench_wrk(server.url, run_id, args.seconds)
    n = args.sequential if "4 workers" not in server.name else args.sequential_slow
    _, run_id = new_run(server.url, "bench")
    r["seq_per_call_ms"] = bench_sequential(server.url, run_id, n) / n * 1000
    r["seq_calls"] = n
    r["batch_s"] = bench_batch(server.url, run_id)
    if populate_runs:
        search_exp, _ = new_run(server.url, "search")
        r["populate_s"] = populate(server.url, search_exp, args.runs)
    r["search_exp"] = search_exp
    r["search_1000_s"], r["search_1000_n"] = bench_search(server.url, search_exp, 1000)
    r["search_100_s"], r["search_100_n"] = bench_search(server.url, search_exp, 100)
    r["graphql_1000_s"], r["graphql_1000_n"] = bench_search_graphql(server.url, search_exp, 1000)
    r["graphql_100_s"], r["graphql_100_n"] = bench_search_graphql(server.url, search_exp, 100)
    r["rss_after_mb"] = tree_rss_mb(server.proc.pid)
    r["pss_after_mb"] = tree_rss_mb(server.proc.pid, "Pss")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orchard", default=str(ROOT / "target" / "release" / "orchard"))
    ap.add_argument("--runs", type=int, default=10000, help="runs to search over (default 10000)")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per server")
    ap.add_argument("--sequential", type=int, default=10000, help="sequential log_metric calls")
    ap.add_argument("--sequential-slow", type=int, default=2000,
                    help="sequential calls for 4-worker mlflow, whose ~40 ms keep-alive floor would make 10,000 take minutes")
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "orchard").mkdir()
        o = start_orchard(args.orchard, tmp / "orchard")
        results.append(measure(o, args, populate_runs=True))
        o.stop()
        o2 = start_orchard(args.orchard, tmp / "orchard")
        results[-1]["warm_startup_s"] = o2.startup_s
        o2.stop()
        if not args.skip_mlflow:
            (tmp / "mlflow").mkdir()
            m = start_mlflow(tmp / "mlflow", None)
            results.append(measure(m, args, populate_runs=True))
            m.stop()
            m1 = start_mlflow(tmp / "mlflow", 1)
            results[-1]["warm_startup_s"] = m1.startup_s
            results.append(measure(m1, args, populate_runs=False, search_exp=results[-1]["search_exp"]))
            m1.stop()
    report(results, args)


def report(results: list[dict], args) -> None:
    o, peers = results[0], results[1:]
    rows = [
        ("log-metric throughput, wrk 16 conns (req/s)", lambda r: r["wrk"]["rps"], True, "{:,.0f}"),
        ("log-metric p50 latency (ms)", lambda r: r["wrk"]["p50_ms"], False, "{:.2f}"),
        ("log-metric p99 latency (ms)", lambda r: r["wrk"]["p99_ms"], False, "{:.2f}"),
        ("sequential log_metric, per call (ms)", lambda r: r["seq_per_call_ms"], False, "{:.2f}"),
        ("10,000 sequential log_metric (s)", lambda r: r["seq_per_call_ms"] * 10, False, "{:.1f}"),
        ("log_batch 10 × 1,000 metrics (s)", lambda r: r["batch_s"], False, "{:.3f}"),
        (f"search_runs, {args.runs:,} runs, 2-clause filter, max 1000 (ms)", lambda r: r["search_1000_s"] * 1000, False, "{:.1f}"),
        (f"search_runs, {args.runs:,} runs, 2-clause filter, max 100 (ms)", lambda r: r["search_100_s"] * 1000, False, "{:.1f}"),
        ("GraphQL mlflowSearchRuns, same search, max 1000 (ms)", lambda r: r["graphql_1000_s"] * 1000, False, "{:.1f}"),
        ("GraphQL mlflowSearchRuns, same search, max 100 (ms)", lambda r: r["graphql_100_s"] * 1000, False, "{:.1f}"),
        ("idle RSS, whole process tree (MB)", lambda r: r["idle_rss_mb"], False, "{:.1f}"),
        ("RSS after the benchmark (MB)", lambda r: r["rss_after_mb"], False, "{:.1f}"),
        ("PSS after the benchmark (MB)", lambda r: r["pss_after_mb"], False, "{:.1f}"),
        ("start-up on a fresh database (s)", lambda r: r.get("startup_s") if "workers 1" not in r["name"] else None, False, "{:.2f}"),
        ("start-up on an existing database (s)", lambda r: r.get("warm_startup_s") if "workers 1" not in r["name"] else r["startup_s"], False, "{:.2f}"),
    ]
    head = "| measure | " + " | ".join(r["name"] for r in results) + " | Orchard vs best MLflow |"
    lines = [head, "|" + "---|" * (len(results) + 2)]
    for label, f, higher_better, fmt in rows:
        vals = [f(r) for r in results]
        cells = [fmt.format(v) if v is not None else "–" for v in vals]
        peer_vals = [v for v in vals[1:] if v is not None]
        ratio = "–"
        if peer_vals and vals[0]:
            best = max(peer_vals) if higher_better else min(peer_vals)
            ratio = f"{(vals[0] / best) if higher_better else (best / vals[0]):.1f}×"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    counts = (f"search returned {o['search_1000_n']} and {o['search_100_n']} runs (GraphQL: {o['graphql_1000_n']} and "
              f"{o['graphql_100_n']}); Orchard's GraphQL search vs its REST search of the same page: "
              f"{o['graphql_1000_s'] / o['search_1000_s']:.2f}× (max 1000), {o['graphql_100_s'] / o['search_100_s']:.2f}× (max 100) "
              f"the time; population took ") + ", ".join(
        f"{r['name']}: {r['populate_s']:.1f} s" for r in results if "populate_s" in r)
    seq = ", ".join(f"{r['name']}: {r['seq_calls']:,} calls" for r in results)
    text = "\n".join(lines) + f"\n\n{counts}.\nSequential calls measured: {seq} (the 10,000 row is per-call × 10,000).\n"
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "tracking.md").write_text(text)


if __name__ == "__main__":
    main()
