"""`orchard data` against the real `dvc` (pinned in requirements.txt): same bytes on disk, and each tool sees
the other's repositories, caches and remotes (a local folder, and moto's S3 server over HTTP) as its own."""

from __future__ import annotations

import hashlib
import os
import pathlib
import time
import shutil
import subprocess
import sys

import pytest

from conftest import BIN

DVC = str(pathlib.Path(sys.executable).parent / "dvc")


def env_for(tmp_path, extra=None):
    env = dict(os.environ)
    env.update({
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    })
    env.update(extra or {})
    return env


class Tools:
    def __init__(self, tmp_path, extra_env=None):
        self.env = env_for(tmp_path, extra_env)

    def run(self, args, cwd, check=True):
        p = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def orchard(self, cwd, *args, check=True):
        return self.run([BIN, "data", *args], cwd, check)

    def dvc(self, cwd, *args, check=True):
        return self.run([DVC, *args], cwd, check)

    def git(self, cwd, *args):
        return self.run(["git", *args], cwd)


@pytest.fixture
def tools(tmp_path):
    return Tools(tmp_path)


# A single file (with CRLF line ends), a folder with nested and non-ASCII names (and names whose order differs
# between "sorted by string" and "sorted by path parts"), an executable file, and an empty folder.
FILES = {
    "data.csv": b"sepal_length,species\r\n5.1,setosa\r\n",
    "images/a.txt": b"x\n",
    "images/a-b": b"dash\n",
    "images/a/b": b"nested\n",
    "images/sub/deeper/c.bin": bytes(range(256)) * 10,
    "images/caf\u00e9/\u00fc.txt": b"umlaut\n",
    "images/\U0001F600/smile": b"emoji\n",
    "images/\u4e2d\u6587.txt": b"cjk\n",
    "run.sh": b"#!/bin/sh\necho hi\n",
}
TARGETS = ["data.csv", "images", "run.sh", "empty"]


def populate(root: pathlib.Path):
    for rel, data in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / "run.sh").chmod(0o755)
    (root / "empty").mkdir()


def new_repo(tools, root: pathlib.Path, tool: str):
    root.mkdir(parents=True)
    tools.git(root, "init", "-q", ".")
    if tool == "dvc":
        tools.dvc(root, "init", "-q")
    else:
        tools.orchard(root, "init")
    populate(root)


def assert_restored(root: pathlib.Path):
    for rel, data in FILES.items():
        assert (root / rel).read_bytes() == data, rel
    assert os.access(root / "run.sh", os.X_OK)
    assert not os.access(root / "data.csv", os.X_OK)
    assert (root / "empty").is_dir() and not any((root / "empty").iterdir())


def cache_listing(root: pathlib.Path):
    cache = root / ".dvc" / "cache"
    return sorted(
        (str(p.relative_to(cache)), p.read_bytes(), oct(p.stat().st_mode & 0o777))
        for p in cache.rglob("*") if p.is_file() and ".orchard-tmp" not in p.parts
    )


def test_add_writes_the_same_bytes_as_dvc(tools, tmp_path):
    o, d = tmp_path / "o", tmp_path / "d"
    new_repo(tools, o, "orchard")
    new_repo(tools, d, "dvc")
    tools.orchard(o, "add", *TARGETS)
    tools.dvc(d, "add", "-q", *TARGETS)
    for name in ["data.csv.dvc", "images.dvc", "run.sh.dvc", "empty.dvc", ".gitignore", ".dvcignore",
                 ".dvc/config", ".dvc/.gitignore"]:
        assert (o / name).read_bytes() == (d / name).read_bytes(), name
    # Same objects (including the .dir listing with its escaping and order), same read-only mode.
    assert cache_listing(o) == cache_listing(d)
    assert "isexec: true" in (o / "run.sh.dvc").read_text()
    assert "d751713988987e9331980363e24189ce.dir" in (o / "empty.dvc").read_text()


@pytest.fixture(params=["local", "s3"])
def remote(request, tmp_path):
    """(url, extra config options, environment) of a fresh remote."""
    if request.param == "local":
        yield str(tmp_path / "remote"), {}, {}
    else:
        s3 = request.getfixturevalue("s3_server")
        # Endpoint and keys in .dvc/config (DVC's keys), not in the environment: both tools must read them.
        yield "s3://orchard/dvcstore", {
            "endpointurl": s3["url"], "access_key_id": "testing", "secret_access_key": "testing",
            "region": "us-east-1",
        }, {}


def add_remote(tools, root, tool, url, options):
    if tool == "dvc":
        tools.dvc(root, "remote", "add", "-d", "store", url)
        for k, v in options.items():
            tools.dvc(root, "remote", "modify", "store", k, v)
    else:
        tools.orchard(root, "remote", "add", "-d", "store", url)
        for k, v in options.items():
            tools.orchard(root, "remote", "modify", "store", k, v)


def test_orchard_repo_is_up_to_date_for_dvc_and_dvc_pull_restores_it(tools, tmp_path, remote):
    url, options, _ = remote
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", *TARGETS)
    add_remote(tools, o, "orchard", url, options)
    pushed = tools.orchard(o, "push")
    assert "files pushed" in pushed.stdout
    assert tools.dvc(o, "status").stdout.strip() == "Data and pipelines are up to date."
    assert "in sync" in tools.dvc(o, "status", "-c").stdout
    # A second push has nothing to do.
    assert tools.orchard(o, "push").stdout.strip() == "Everything is up to date."

    tools.git(o, "add", "-A")
    tools.git(o, "commit", "-qm", "data")
    clone = tmp_path / "clone"
    tools.git(tmp_path, "clone", "-q", str(o), str(clone))
    assert not (clone / "data.csv").exists()
    tools.dvc(clone, "pull", "-q")
    assert_restored(clone)
    assert tools.orchard(clone, "status").stdout.strip() == "Data and pipelines are up to date."


def test_dvc_repo_is_up_to_date_for_orchard_and_orchard_pull_restores_it(tools, tmp_path, remote):
    url, options, _ = remote
    d = tmp_path / "d"
    new_repo(tools, d, "dvc")
    tools.dvc(d, "add", "-q", *TARGETS)
    add_remote(tools, d, "dvc", url, options)
    tools.dvc(d, "push", "-q")
    assert tools.orchard(d, "status").stdout.strip() == "Data and pipelines are up to date."
    assert "in sync" in tools.orchard(d, "status", "--cloud").stdout

    tools.git(d, "add", "-A")
    tools.git(d, "commit", "-qm", "data")
    clone = tmp_path / "clone"
    tools.git(tmp_path, "clone", "-q", str(d), str(clone))
    pulled = tools.orchard(clone, "pull")
    assert "A\timages/" in pulled.stdout and "files fetched" in pulled.stdout
    assert_restored(clone)
    assert tools.dvc(clone, "status").stdout.strip() == "Data and pipelines are up to date."
    assert "in sync" in tools.dvc(clone, "status", "-c").stdout


def test_edits_are_seen_by_both_tools_and_commit_records_them(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", *TARGETS)
    (o / "images" / "a.txt").write_bytes(b"changed\n")
    (o / "data.csv").unlink()
    st = tools.orchard(o, "status", "--json").stdout
    assert '"images": "modified"' in st and '"data.csv": "deleted"' in st
    assert "modified:" in tools.dvc(o, "status").stdout
    # Without -f a changed output is not committed (DVC asks; there is no terminal here).
    assert tools.orchard(o, "commit", "images", check=False).returncode != 0
    tools.orchard(o, "commit", "-f", "images")
    tools.orchard(o, "checkout", "data.csv")
    assert tools.dvc(o, "status").stdout.strip() == "Data and pipelines are up to date."
    assert tools.orchard(o, "status").stdout.strip() == "Data and pipelines are up to date."


def test_checkout_refuses_to_lose_unsaved_work(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", "images")
    (o / "images" / "a.txt").write_bytes(b"unsaved edit\n")
    (o / "images" / "new.txt").write_bytes(b"new file\n")
    p = tools.orchard(o, "checkout", check=False)
    assert p.returncode != 0
    assert "unsaved" in p.stderr and "images/a.txt" in p.stderr
    assert (o / "images" / "a.txt").read_bytes() == b"unsaved edit\n"
    forced = tools.orchard(o, "checkout", "--force")
    assert "M\timages/" in forced.stdout
    assert (o / "images" / "a.txt").read_bytes() == FILES["images/a.txt"]
    assert not (o / "images" / "new.txt").exists()


def test_a_corrupted_remote_object_is_reported_and_never_checked_out(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", "data.csv")
    tools.orchard(o, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    tools.orchard(o, "push")
    md5 = hashlib.md5(FILES["data.csv"]).hexdigest()
    obj = tmp_path / "remote" / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"tampered")
    tools.git(o, "add", "-A")
    tools.git(o, "commit", "-qm", "data")
    clone = tmp_path / "clone"
    tools.git(tmp_path, "clone", "-q", str(o), str(clone))
    p = tools.orchard(clone, "pull", check=False)
    assert p.returncode != 0
    assert "corrupted" in p.stderr and md5 in p.stderr
    assert not (clone / "data.csv").exists()
    assert not (clone / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()


def test_a_corrupted_cache_object_is_detected_and_not_checked_out(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", "data.csv")
    md5 = hashlib.md5(FILES["data.csv"]).hexdigest()
    obj = o / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert oct(obj.stat().st_mode & 0o777) == "0o444"
    obj.chmod(0o644)
    obj.write_bytes(b"bit rot")
    (o / "data.csv").unlink()
    p = tools.orchard(o, "checkout", check=False)
    assert p.returncode != 0 and "data.csv" in p.stderr
    assert not (o / "data.csv").exists()
    assert "not in cache" in tools.orchard(o, "status").stdout


def test_an_interrupted_pull_is_completed_by_rerunning_it(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", *TARGETS)
    tools.orchard(o, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    tools.orchard(o, "push")
    tools.git(o, "add", "-A")
    tools.git(o, "commit", "-qm", "data")
    clone = tmp_path / "clone"
    tools.git(tmp_path, "clone", "-q", str(o), str(clone))
    # Stand-in for an interruption: part of the data arrived, plus a stray temporary file of a killed run.
    tools.orchard(clone, "fetch", "data.csv")
    tmp_dir = clone / ".dvc" / "cache" / ".orchard-tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    (tmp_dir / ".object.orchard-tmp.1.0").write_bytes(b"half an obj")
    tools.orchard(clone, "pull")
    assert_restored(clone)
    assert tools.dvc(clone, "status").stdout.strip() == "Data and pipelines are up to date."


def test_add_removes_what_a_killed_add_left_in_the_cache(tools, tmp_path):
    root = tmp_path / "r"
    new_repo(tools, root, "orchard")
    tmp = root / ".dvc" / "cache" / ".orchard-tmp"
    tmp.mkdir(parents=True)
    pid_max = int(pathlib.Path("/proc/sys/kernel/pid_max").read_text())
    dead = next(p for p in range(pid_max - 1, 1, -1) if not pathlib.Path(f"/proc/{p}").exists())
    abandoned = tmp / f".object.orchard-tmp.{dead}.0"
    abandoned.write_bytes(b"half an object")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    # A dead process's file written a moment ago may be another machine's on a shared cache: it stays.
    recent = tmp / f".object.orchard-tmp.{dead}.1"
    recent.write_bytes(b"just written")
    # A file of a process that still runs (this test's own) may be another add writing: it stays.
    in_use = tmp / f".object.orchard-tmp.{os.getpid()}.0"
    in_use.write_bytes(b"being written")
    os.utime(in_use, (two_hours_ago, two_hours_ago))
    tools.orchard(root, "add", "data.csv")
    assert not abandoned.exists()
    assert in_use.exists() and recent.exists()


def test_legacy_dvc2_files_are_read(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    data = b"line one\r\nline two\r\n"
    (o / "legacy.txt").write_bytes(data)
    md5 = hashlib.md5(data.replace(b"\r\n", b"\n")).hexdigest()  # md5-dos2unix of a text file
    obj = o / ".dvc" / "cache" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data)
    (o / "legacy.txt.dvc").write_text(f"outs:\n- md5: {md5}\n  size: {len(data)}\n  path: legacy.txt\n")
    assert tools.dvc(o, "status").stdout.strip() == "Data and pipelines are up to date."
    assert tools.orchard(o, "status").stdout.strip() == "Data and pipelines are up to date."
    tools.orchard(o, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    tools.orchard(o, "push")
    assert (tmp_path / "remote" / md5[:2] / md5[2:]).read_bytes() == data
    (o / "legacy.txt").unlink()
    obj.chmod(0o644)
    obj.unlink()
    tools.orchard(o, "pull")
    assert (o / "legacy.txt").read_bytes() == data
    # The file is still a 2.x file: no `hash:` key was added.
    assert "hash:" not in (o / "legacy.txt.dvc").read_text()


def test_gc_keeps_what_the_workspace_uses(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", "data.csv")
    old = hashlib.md5(FILES["data.csv"]).hexdigest()
    (o / "data.csv").write_bytes(b"v2\n")
    tools.orchard(o, "add", "data.csv")
    assert (o / ".dvc/cache/files/md5" / old[:2] / old[2:]).exists()
    assert tools.orchard(o, "gc", "-w", check=False).returncode != 0  # no confirmation without -f
    out = tools.orchard(o, "gc", "-w", "-f").stdout
    assert "Removed 1 objects" in out
    assert not (o / ".dvc/cache/files/md5" / old[:2] / old[2:]).exists()
    assert tools.dvc(o, "status").stdout.strip() == "Data and pipelines are up to date."


def test_clear_errors_with_the_path(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    p = tools.orchard(o, "add", "nope.csv", check=False)
    assert p.returncode == 1 and "output 'nope.csv' does not exist" in p.stderr
    (tmp_path / "outside.txt").write_text("x")
    p = tools.orchard(o, "add", "../outside.txt", check=False)
    assert p.returncode == 1 and "outside of DVC project: ../outside.txt" in p.stderr
    tools.orchard(o, "add", "data.csv")
    p = tools.orchard(o, "push", check=False)
    assert p.returncode == 1 and "no remote specified" in p.stderr
    (o / ".dvcignore").write_text("*.tmp\n")
    (o / "x.tmp").write_text("x")
    p = tools.orchard(o, "add", "x.tmp", check=False)
    assert p.returncode == 1 and "ignored" in p.stderr
    p = tools.orchard(tmp_path, "status", check=False)
    assert p.returncode == 1 and "not inside of a DVC repository" in p.stderr
    (o / "bad.dvc").write_text("outs:\n- md5: zz\n  path: x\n")
    p = tools.orchard(o, "status", check=False)
    assert p.returncode == 1 and "bad.dvc" in p.stderr and "bad md5" in p.stderr
    if os.geteuid() != 0:  # root reads everything; the check is meaningful for ordinary users only
        (o / "bad.dvc").unlink()
        (o / "secret").mkdir()
        (o / "secret" / "f").write_text("x")
        (o / "secret" / "f").chmod(0)
        p = tools.orchard(o, "add", "secret", check=False)
        assert p.returncode == 1 and "secret/f" in p.stderr and "permission denied" in p.stderr


def test_remote_commands_write_dvcs_config(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "remote", "add", "-d", "Store", "../storage")
    tools.orchard(o, "remote", "add", "s3r", "s3://bucket/prefix")
    tools.orchard(o, "remote", "modify", "s3r", "endpointurl", "http://127.0.0.1:9000")
    assert (o / ".dvc/config").read_text() == (
        "[core]\n    remote = store\n"
        "['remote \"store\"']\n    url = ../../storage\n"
        "['remote \"s3r\"']\n    url = s3://bucket/prefix\n    endpointurl = http://127.0.0.1:9000\n"
    )
    assert tools.dvc(o, "remote", "default").stdout.strip() == "store"
    listed = tools.orchard(o, "remote", "list").stdout.splitlines()
    assert listed[0] == f"store\t{tmp_path / 'storage'}\t(default)"
    p = tools.orchard(o, "remote", "add", "store", "/x", check=False)
    assert p.returncode == 1 and "already exists" in p.stderr
    p = tools.orchard(o, "remote", "modify", "s3r", "colour", "blue", check=False)
    assert p.returncode == 1 and "extra keys not allowed" in p.stderr
    tools.orchard(o, "remote", "remove", "store")
    assert "remote = store" not in (o / ".dvc/config").read_text()


def test_ls_lists_a_tracked_folder(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "add", "images")
    import json
    entries = json.loads(tools.orchard(o, "ls", "images", "--json").stdout)
    paths = sorted(e["path"] for e in entries)
    assert paths == sorted(k for k in FILES if k.startswith("images/"))
    assert all(e["md5"] == hashlib.md5(FILES[e["path"]]).hexdigest() for e in entries)


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink", "copy"])
def test_link_types_never_let_a_workspace_edit_reach_the_cache(tools, tmp_path, cache_type):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    tools.orchard(o, "config", "cache.type", cache_type)
    assert tools.orchard(o, "config", "cache.type").stdout.strip() == cache_type
    tools.orchard(o, "add", "images")
    f = o / "images" / "a.txt"
    md5 = hashlib.md5(FILES["images/a.txt"]).hexdigest()
    obj = o / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    if cache_type == "hardlink":
        assert f.stat().st_ino == obj.stat().st_ino
        assert oct(f.stat().st_mode & 0o777) == "0o444"
    elif cache_type == "symlink":
        assert f.is_symlink() and f.resolve() == obj.resolve()
    else:
        assert f.stat().st_ino != obj.stat().st_ino and oct(f.stat().st_mode & 0o777) == "0o644"
    assert tools.dvc(o, "status").stdout.strip() == "Data and pipelines are up to date."
    # Editing the way editors and tools do (write a new file, rename over) leaves the cache object alone.
    tmp = o / "images" / ".a.txt.swp"
    tmp.write_bytes(b"edited\n")
    os.replace(tmp, f)
    assert obj.read_bytes() == FILES["images/a.txt"]
    assert '"images": "modified"' in tools.orchard(o, "status", "--json").stdout
    tools.orchard(o, "checkout", "--force")
    assert f.read_bytes() == FILES["images/a.txt"]


def test_autostage_stages_what_add_wrote(tools, tmp_path):
    o = tmp_path / "o"
    new_repo(tools, o, "orchard")
    # init stages DVC's own files, as `dvc init` does.
    staged = tools.git(o, "status", "--porcelain").stdout
    assert "A  .dvc/config" in staged and "A  .dvcignore" in staged
    tools.orchard(o, "config", "core.autostage", "true")
    tools.orchard(o, "add", "data.csv")
    staged = tools.git(o, "status", "--porcelain").stdout
    assert "A  data.csv.dvc" in staged and "A  .gitignore" in staged


def test_a_killed_push_is_completed_by_rerunning_it(tools, tmp_path):
    o = tmp_path / "o"
    o.mkdir()
    tools.git(o, "init", "-q", ".")
    tools.orchard(o, "init")
    many = o / "many"
    many.mkdir()
    for i in range(4000):
        (many / f"{i:05d}.txt").write_bytes(f"file {i}\n".encode() * 50)
    tools.orchard(o, "add", "many")
    remote_dir = tmp_path / "remote"
    tools.orchard(o, "remote", "add", "-d", "store", str(remote_dir))
    proc = subprocess.Popen([BIN, "data", "push", "-j", "1"], cwd=o, env=tools.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait (bounded) until the push has started writing objects, then kill it without warning.
    import time
    deadline = time.monotonic() + 60
    while not (remote_dir / "files" / "md5").exists() or not any((remote_dir / "files" / "md5").rglob("*")):
        assert time.monotonic() < deadline and proc.poll() is None, "push never started"
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    assert proc.returncode == -9
    assert "in sync" not in tools.dvc(o, "status", "-c").stdout
    rerun = tools.orchard(o, "push")
    assert "files pushed" in rerun.stdout
    assert "in sync" in tools.dvc(o, "status", "-c").stdout
    # dvc can restore everything from what the two runs left on the remote.
    shutil.rmtree(o / ".dvc" / "cache")
    shutil.rmtree(many)
    tools.dvc(o, "pull", "-q")
    assert len(list(many.iterdir())) == 4000
