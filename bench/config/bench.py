"""`orchard config show` vs a minimal `@hydra.main` app: same conf/ directory, same three overrides,
whole-process wall time (start to exit), median of N runs each, interleaved. Prints a Markdown table."""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OVERRIDES = ["db=postgresql", "params.learning_rate=0.02", "+params.note=bench"]


def timed(cmd: list[str], cwd: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "USER": "bench"})
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {out.stderr}")
    return elapsed, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orchard", default=str(ROOT / "target" / "release" / "orchard"))
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as run_dir:
        orchard_cmd = [args.orchard, "config", "show", "-c", str(HERE / "conf"), *OVERRIDES]
        hydra_cmd = [sys.executable, str(HERE / "app.py"), f"hydra.run.dir={run_dir}/outputs", *OVERRIDES]
        _, o_out = timed(orchard_cmd, run_dir)
        _, h_out = timed(hydra_cmd, run_dir)
        same = o_out.strip() == h_out.strip()
        o_times, h_times = [], []
        for _ in range(args.runs):
            o_times.append(timed(orchard_cmd, run_dir)[0])
            h_times.append(timed(hydra_cmd, run_dir)[0])
    o, h = statistics.median(o_times), statistics.median(h_times)
    print("| measure | orchard config show | Hydra 1.3.2 app | ratio |")
    print("|---|---|---|---|")
    print(f"| compose + 3 overrides + print, whole process (ms, median of {args.runs}) | {o * 1000:.1f} | {h * 1000:.1f} | {h / o:.0f}× |")
    print(f"\nSame YAML printed by both: {same}.")


if __name__ == "__main__":
    main()
