"""Side-by-side benchmark of `orchard data` and `dvc` (see run.sh). Every command runs as its own process; wall
time and peak RSS (from wait4) are recorded for each, and the ratio dvc/orchard printed per row."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORCHARD = str(ROOT / "target" / "release" / "orchard")
DVC = str(pathlib.Path(sys.executable).parent / "dvc")


def settle():
    """Lets the previous step's writes reach the disk before the next step is timed, so that no step pays for
    the write-back of the one before it (the same for both tools)."""
    os.sync()
    time.sleep(1)


def run(args, cwd, env):
    """Runs one command; returns (seconds, peak RSS in MiB)."""
    settle()
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args} failed in {cwd}:\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def shell(cmd, cwd, env):
    return run(["bash", "-c", cmd], cwd, env)


def make_small_files(dest: pathlib.Path, n: int):
    rng = random.Random(42)
    for i in range(n):
        d = dest / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.bin").write_bytes(rng.randbytes(rng.randint(1024, 4096)))


def make_big_file(dest: pathlib.Path, mib: int):
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    with open(dest / "big.bin", "wb") as f:
        for _ in range(mib):
            f.write(rng.randbytes(1 << 20))


def bench_tool(tool, work: pathlib.Path, dataset: pathlib.Path, name: str, env):
    work.mkdir(parents=True)
    repo = work / f"{tool}-repo"
    remote = work / f"{tool}-remote"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "."], cwd=repo, check=True, env=env)
    cli = [ORCHARD, "data", "-q"] if tool == "orchard" else [DVC]
    quiet = [] if tool == "orchard" else ["-q"]
    subprocess.run(cli + ["init"] + quiet, cwd=repo, check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(cli + ["remote", "add", "-d", "store", str(remote)], cwd=repo, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    if dataset.is_dir():
        shutil.copytree(dataset, repo / name)
    else:
        shutil.copy2(dataset, repo / name)
    rows = {}
    rows["add"] = run(cli + ["add", name] + quiet, repo, env)
    rows["status"] = run(cli + ["status"] + quiet, repo, env)
    rows["push"] = run(cli + ["push"] + quiet, repo, env)
    # Cache and workspace copy leave the repository before the pull. They are moved aside, not deleted: on
    # ext4, creating files right after tens of thousands were deleted is several times slower (the inode
    # allocator skips recently freed inodes), which would time the filesystem, not the tools. Everything is
    # deleted once all timings are taken.
    aside = work / f"{tool}-aside"
    aside.mkdir()
    (repo / ".dvc" / "cache").rename(aside / "cache")
    (repo / name).rename(aside / name)
    if tool == "dvc":
        # DVC's machine-wide state and indexes would otherwise remember the data.
        if os.path.exists(env["DVC_SITE_CACHE_DIR"]):
            os.rename(env["DVC_SITE_CACHE_DIR"], aside / "site")
    rows["pull"] = run(cli + ["pull"] + quiet, repo, env)
    # Both must have restored the same bytes.
    check = subprocess.run(["diff", "-rq", str(dataset), str(repo / name)], capture_output=True)
    if check.returncode != 0:
        raise SystemExit(f"{tool} pull restored different data:\n{check.stdout.decode()}")
    return rows


def reference(dataset: pathlib.Path, work: pathlib.Path, env):
    md5 = shell(f"find {dataset} -type f -print0 | xargs -0 -P {os.cpu_count()} -n 500 md5sum > /dev/null", work, env)
    # Neither tool syncs to disk, so neither does the reference copy (kept until the end, like the tools' files).
    cp = shell(f"cp -r {dataset} {work}/cp-copy-{dataset.name}", work, env)
    return {"md5sum": md5, "cp": cp}


def case(title, dataset, name, work, env, results):
    print(f"\n## {title}\n")
    work.mkdir(parents=True)
    ref = reference(dataset, work, env)
    o = bench_tool("orchard", work / "orchard", dataset, name, env)
    d = bench_tool("dvc", work / "dvc", dataset, name, env)
    print(f"| step | orchard s | dvc s | dvc/orchard | orchard peak RSS MiB | dvc peak RSS MiB |")
    print(f"|---|---:|---:|---:|---:|---:|")
    for step in ["add", "status", "push", "pull"]:
        (ot, orss), (dt, drss) = o[step], d[step]
        print(f"| {step} | {ot:.3f} | {dt:.3f} | {dt / ot:.1f}× | {orss:.0f} | {drss:.0f} |")
    print(f"\nreference: md5sum of all files {ref['md5sum'][0]:.3f} s, cp -r {ref['cp'][0]:.3f} s; "
          f"orchard add / md5sum = {o['add'][0] / ref['md5sum'][0]:.2f}")
    results[title] = {"orchard": o, "dvc": d, "reference": ref}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="orchard-bench-data-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = pathlib.Path(tmp)
        env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(work / "dvc-site"),
                   GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
        if not args.skip_small:
            small = work / "small-src" / "many"
            make_small_files(small, args.files)
            case(f"(a) {args.files} files of 1–4 KB", small, "many", work / "a", env, results)
        if not args.skip_big:
            big = work / "big-src"
            make_big_file(big, args.big_mib)
            case(f"(b) one {args.big_mib} MiB file", big / "big.bin", "big.bin", work / "b", env, results)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
