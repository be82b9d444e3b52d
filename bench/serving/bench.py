"""Side-by-side serving benchmark (see run.sh): the same iris LightGBM model behind `orchard serve` and behind
a FastAPI + uvicorn app, the same wrk load, one after the other on this machine. Prints req/s, p50, p99 and
RSS for both, the ratios, and checks that both answer the same flower."""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
ORCHARD = str(ROOT / "target" / "release" / "orchard")
BODY = {"sepal": {"length": 5.1, "width": 3.5}, "petal": {"length": 1.4, "width": 0.2}}

# The model is the interop suite's iris model (test_serving.py serves it too), found from this file's place so
# that the benchmark runs from any directory.
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from iris_model import write_iris_model  # noqa: E402  (the interop suite's model writer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            r = requests.post(url + "/predict", json=BODY, timeout=2)
            if r.status_code == 200:
                return r.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn may fork), in MB."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def to_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def wrk(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(HERE / "predict.lua"), url + "/predict"],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = to_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed requests\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99}


def measure(name, cmd, env, port, seconds, connections, cwd):
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        answer = wait_ready(url, proc)
        idle = rss_mb(proc.pid)
        wrk(url, 2, connections)  # warm-up
        result = wrk(url, seconds, connections)
        result["rss_idle"] = idle
        result["rss_after"] = rss_mb(proc.pid)
        result["answer"] = answer["flower"]
        print(f"{name}: {result}", file=sys.stderr)
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--orchard", default=ORCHARD, help="the orchard binary (default: target/release/orchard)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchard-bench-serving-") as tmp:
        tmp = pathlib.Path(tmp)
        model = tmp / "iris-model"
        write_iris_model(model, rounds=50)
        port = free_port()
        # One request thread: wrk shares this machine's cores, and a thread per core would have the server
        # and the load generator preempt each other (a longer tail for a few percent more throughput).
        orchard = measure("orchard --threads 1", [args.orchard, "serve", "-m", str(model), "--port", str(port),
                          "--threads", "1"], dict(os.environ, ORCHARD_LOG="warn"), port, args.seconds,
                          args.connections, tmp)
        port = free_port()
        # The default: a request thread per core.
        wide = measure("orchard (a thread per core)", [args.orchard, "serve", "-m", str(model), "--port", str(port)],
                       dict(os.environ, ORCHARD_LOG="warn"), port, args.seconds, args.connections, tmp)
        port = free_port()
        # The same server without the prediction log: what the log costs.
        quiet = measure("orchard --threads 1 --no-prediction-log", [args.orchard, "serve", "-m", str(model), "--port",
                        str(port), "--threads", "1", "--no-prediction-log"], dict(os.environ, ORCHARD_LOG="warn"),
                        port, args.seconds, args.connections, tmp)
        port = free_port()
        fastapi = measure("fastapi", [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--port", str(port),
                                      "--log-level", "warning", "--no-access-log"],
                          dict(os.environ, MODEL_DIR=str(model), PYTHONPATH=str(HERE)), port, args.seconds,
                          args.connections, HERE)
    assert orchard["answer"] == fastapi["answer"] == "setosa", (orchard["answer"], fastapi["answer"])
    print(f"\nwrk -t2 -c{args.connections} -d{args.seconds}s, POST /predict with one nested iris flower\n")
    print("| measure | orchard serve | FastAPI + uvicorn + LightGBM | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| throughput (req/s) | {orchard['rps']:,.0f} | {fastapi['rps']:,.0f} | {orchard['rps'] / fastapi['rps']:.0f}× |")
    print(f"| p50 latency (ms) | {orchard['p50']:.3f} | {fastapi['p50']:.2f} | {fastapi['p50'] / orchard['p50']:.0f}× |")
    print(f"| p99 latency (ms) | {orchard['p99']:.3f} | {fastapi['p99']:.2f} | {fastapi['p99'] / orchard['p99']:.0f}× |")
    print(f"| RSS with the model loaded, idle (MB) | {orchard['rss_idle']:.1f} | {fastapi['rss_idle']:.1f} | {fastapi['rss_idle'] / orchard['rss_idle']:.0f}× |")
    print(f"| RSS after the load (MB) | {orchard['rss_after']:.1f} | {fastapi['rss_after']:.1f} | {fastapi['rss_after'] / orchard['rss_after']:.0f}× |")
    print(f"\nBoth answered: {orchard['answer']}. Orchard ran `serve --threads 1` (uvicorn runs one worker) and"
          " wrote its prediction log meanwhile.")
    print(f"A request thread per core (the default): {wide['rps']:,.0f} req/s, p50 {wide['p50']:.3f} ms, "
          f"p99 {wide['p99']:.3f} ms.")
    print(f"Without the prediction log (--no-prediction-log): {quiet['rps']:,.0f} req/s, p50 {quiet['p50']:.3f} ms, "
          f"p99 {quiet['p99']:.3f} ms.")

if __name__ == "__main__":
    main()
