"""Per-stage overhead of pipeline orchestration, side by side on this machine: the same N-stage DAG of trivial
commands (stage i writes its number to out/s<i>.txt after stage (i-1)/2: a binary tree) run by `orchard repro`,
by `dvc repro`, and as N Prefect 3 tasks in one flow against a persistent `prefect server`.

The commands themselves cost the same everywhere (one `sh -c`: `orchard` and `dvc` run commands with $SHELL, so
they get SHELL=/bin/sh here — a bash start-up costs more than the whole of a trivial stage's bookkeeping); the
baseline runs them in a plain loop, and each tool's overhead per stage is (its wall time - the baseline) / N.
Prints the figures and the ratios."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORCHARD = str(ROOT / "target" / "release" / "orchard")


def cmd_of(i: int) -> str:
    return f"echo {i} > out/s{i}.txt"


def dvc_yaml(n: int) -> str:
    lines = ["stages:"]
    for i in range(n):
        lines.append(f"  s{i}:")
        lines.append(f"    cmd: {cmd_of(i)}")
        if i > 0:
            lines.append(f"    deps: [out/s{(i - 1) // 2}.txt]")
        lines.append(f"    outs: [out/s{i}.txt]")
    return "\n".join(lines) + "\n"


def make_repo(path: pathlib.Path, n: int, dvc: str):
    path.mkdir(parents=True)
    (path / "out").mkdir()
    subprocess.run(["git", "init", "-q", "."], cwd=path, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=path, check=True)
    # Outputs go to the repository root's out/ folder: a .gitkeep keeps it through `outs` removal.
    (path / "out" / ".gitkeep").write_text("")
    (path / "dvc.yaml").write_text(dvc_yaml(n))


# The shell every tool runs the stages' commands with (see the module's docstring).
SHELL_ENV = dict(os.environ, SHELL="/bin/sh")


def timed(args, cwd, env=SHELL_ENV) -> float:
    # Each timed step starts from a settled disk, not with the last step's writes still going out.
    os.sync()
    t = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def median(xs):
    return sorted(xs)[len(xs) // 2]


def baseline(path: pathlib.Path, n: int) -> float:
    (path / "out").mkdir(parents=True)
    os.sync()
    t = time.perf_counter()
    for i in range(n):
        subprocess.run(["sh", "-c", cmd_of(i)], cwd=path, check=True)
    return time.perf_counter() - t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FLOW = """
import subprocess, sys, time
from prefect import flow, task

@task
def stage(i):
    subprocess.run(["sh", "-c", f"echo {i} > out/s{i}.txt"], check=True)

@flow
def pipeline(n):
    # One task at a time in the DAG's order (parents first), as `orchard repro` and `dvc repro` run them.
    for i in range(n):
        stage(i)

if __name__ == "__main__":
    n = int(sys.argv[1])
    t = time.perf_counter()
    pipeline(n)
    print(time.perf_counter() - t)
"""


def prefect(path: pathlib.Path, n: int, python: str) -> tuple[float, float]:
    """(flow wall time, whole process time) against a persistent server started here."""
    path.mkdir(parents=True)
    (path / "out").mkdir()
    port = free_port()
    home = path / "prefect-home"
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    prefect_bin = str(pathlib.Path(python).parent / "prefect")
    log = open(path / "server.log", "ab")
    server = subprocess.Popen([prefect_bin, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"prefect server did not start: {(path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        (path / "flow.py").write_text(FLOW)
        # A first small flow warms the server (database, caches), as a long-running server would be.
        subprocess.run([python, "flow.py", "5"], cwd=path, env=env, check=True, capture_output=True)
        t = time.perf_counter()
        p = subprocess.run([python, "flow.py", str(n)], cwd=path, env=env, check=True, capture_output=True, text=True)
        whole = time.perf_counter() - t
        return float(p.stdout.strip().splitlines()[-1]), whole
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=1000)
    ap.add_argument("--dvc-stages", type=int, default=200,
                    help="dvc repro's DAG (the same shape, smaller: dvc takes about half a second per stage)")
    ap.add_argument("--dvc", default=str(pathlib.Path(sys.executable).parent / "dvc"))
    ap.add_argument("--prefect-python", default=None, help="python of a venv with prefect (skipped when absent)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the baseline and of orchard (medians are used)")
    args = ap.parse_args()
    n = args.stages
    results = {}
    # BENCH_DIR=/dev/shm measures on tmpfs: the tools' own overhead without the disk's.
    with tempfile.TemporaryDirectory(prefix="orchard-bench-pipeline-", dir=os.environ.get("BENCH_DIR")) as tmp:
        tmp = pathlib.Path(tmp)
        # This shared machine's speed drifts from minute to minute: the quick measurements are repeated (each
        # on a fresh folder) and their medians used.
        bases = [baseline(tmp / f"baseline-{k}", n) for k in range(args.repeat)]
        base = median(bases)
        per_command = base / n
        print(f"baseline: {n} commands in a plain loop: {base:.2f}s (of {', '.join(f'{b:.2f}' for b in bases)})",
              file=sys.stderr)

        walls, agains = [], []
        for k in range(args.repeat):
            repo = tmp / f"orchard-{k}"
            make_repo(repo, n, args.dvc)
            walls.append(timed([ORCHARD, "repro"], repo))
            agains.append(timed([ORCHARD, "repro"], repo))
            # dvc agrees it is up to date (the bench measures a real reproduction, not a shortcut).
            st = subprocess.run([args.dvc, "status", "--json"], cwd=repo, capture_output=True, text=True)
            assert st.stdout.strip() == "{}", st.stdout[:500]
        wall, again = median(walls), median(agains)
        results["orchard repro"] = (wall, again, n)
        print(f"orchard repro: {wall:.2f}s (of {', '.join(f'{w:.2f}' for w in walls)}; nothing to do: {again:.2f}s)",
              file=sys.stderr)

        m = min(args.dvc_stages, n)
        make_repo(tmp / "dvc", m, args.dvc)
        wall = timed([args.dvc, "repro"], tmp / "dvc")
        again = timed([args.dvc, "repro"], tmp / "dvc")
        results["dvc repro"] = (wall, again, m)
        print(f"dvc repro: {wall:.2f}s (nothing to do: {again:.2f}s)", file=sys.stderr)

        if args.prefect_python:
            flow_wall, whole = prefect(tmp / "prefect", n, args.prefect_python)
            results["Prefect 3 flow"] = (flow_wall, None, n)
            print(f"prefect: flow {flow_wall:.2f}s, whole process {whole:.2f}s", file=sys.stderr)

    per = {k: (w - per_command * stages) / stages * 1000 for k, (w, _, stages) in results.items()}
    print(f"\nA binary tree of `echo i > out/s<i>.txt` stages, one at a time; the commands alone: "
          f"{per_command * 1000:.2f} ms each\n")
    print("| tool | stages | wall (s) | overhead per stage (ms) | Orchard's advantage | nothing to do (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    mine = per["orchard repro"]
    for k, (w, again, stages) in results.items():
        ratio = "—" if k == "orchard repro" else f"{per[k] / mine:.1f}×"
        print(f"| {k} | {stages} | {w:.2f} | {per[k]:.2f} | {ratio} | {'' if again is None else f'{again:.2f}'} |")


if __name__ == "__main__":
    main()
