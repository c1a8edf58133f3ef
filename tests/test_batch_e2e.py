"""End-to-end batch scoring through the real `postsieve` command: Ctrl-C and --resume, the Dask
engine on a real LocalCluster, progress lines, clear errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import save_for_test
from tests.test_cli import POSTSIEVE, run

pytestmark = pytest.mark.e2e

BODIES = ["Watershed splits my nuclei, would h-maxima help?", "Buy cheap pills at medsnow.shop now",
          "My espresso runs too fast, which grinder?", "Thanks, lowering sigma fixed it.",
          "Call the helpline now toll free 1 8 0 0 5 5 5 0 1 9 9"]


def write_posts(path, n, start=0):
    with open(path, "w") as f:
        for i in range(start, start + n):
            f.write(json.dumps({"id": i, "title": f"post {i}", "body": BODIES[i % 5] + f" #{i}"}) + "\n")
    return path


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    return str(save_for_test(tiny_model, tmp_path_factory.mktemp("models")))


def test_ctrl_c_leaves_valid_output_and_resume_completes_it(model_dir, tmp_path):
    src = write_posts(tmp_path / "in.jsonl", 8_000)
    full = tmp_path / "full.jsonl"
    run("score", str(src), "-o", str(full), "--model", model_dir, "--chunk-size", "200", "-j", "2")
    out = tmp_path / "out.jsonl"
    ckpt = Path(str(out) + ".checkpoint.json")
    proc = subprocess.Popen([POSTSIEVE, "score", str(src), "-o", str(out), "--model", model_dir, "--chunk-size", "100",
                             "-j", "2"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if json.loads(ckpt.read_text())["records_done"] >= 300:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=120)[1]
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 130, stderr
    assert "stopping after the current chunk" in stderr and "continue with --resume" in stderr
    saved = json.loads(ckpt.read_text())
    assert not saved["complete"]
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]  # every line is whole JSON
    assert ids == list(range(len(ids))) and len(ids) == saved["written"]
    assert len(ids) % 100 == 0 and 300 <= len(ids) < 8_000
    resumed = run("score", str(src), "-o", str(out), "--model", model_dir, "--chunk-size", "100", "-j", "2",
                  "--resume")
    assert f"({len(ids)} by the interrupted run" in resumed.stderr
    assert out.read_bytes() == full.read_bytes()  # no duplicates, no gaps
    again = run("score", str(src), "-o", str(out), "--model", model_dir, "--resume")
    assert "already complete" in again.stderr


@pytest.mark.parametrize("flag", [(), ("--progress",)])
def test_progress_log_lines_when_not_a_terminal(model_dir, tmp_path, flag):
    """Where stderr is not a terminal click draws no bar, so --progress too gives log lines."""
    src = write_posts(tmp_path / "in.jsonl", 400)
    proc = run("score", str(src), "-o", str(tmp_path / "o.jsonl"), "--model", model_dir, "--chunk-size", "50",
               "--log-every", "0.000001", "-j", "1", *flag)
    lines = [l for l in proc.stderr.splitlines() if "% of the input" in l]
    assert len(lines) >= 2 and "allow=" in lines[0] and lines[0].startswith("postsieve: ")
    quiet = run("score", str(src), "-o", str(tmp_path / "q.jsonl"), "--model", model_dir, "--log-every", "0.000001",
                "--no-progress")
    assert not [l for l in quiet.stderr.splitlines() if "% of the input" in l]


def test_wrong_jsonl_mapping_names_the_fields_found(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"pid": 1, "subject": "s", "message": "m"}) + "\n")
    proc = run("score", str(src), "--model", model_dir, "--id-field", "pid", "--body-field", "text", check=False)
    assert proc.returncode != 0
    assert "missing column(s) title, text; fields found in the first record: pid, subject, message" in proc.stderr
    assert "--body-field" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_core_install_without_the_extras(model_dir, tmp_path):
    """Without pyarrow and dask the CLI still works; asking for them names the extra, in one line."""
    src = write_posts(tmp_path / "in.jsonl", 3)
    script = ("import sys\nfor m in ('pyarrow', 'pyarrow.parquet', 'dask', 'distributed', 'fsspec'):\n"
              "    sys.modules[m] = None\nfrom service.cli import main\nsys.argv = ['postsieve'] + sys.argv[1:]\nmain()")

    def core(*args):
        return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)

    ok = core("score", str(src), "-o", str(tmp_path / "o.jsonl"), "--model", model_dir)
    assert ok.returncode == 0, ok.stderr
    parquet = core("score", str(src), "-o", str(tmp_path / "o.parquet"), "--model", model_dir)
    assert parquet.returncode != 0 and "pip install 'postsieve[parquet]'" in parquet.stderr
    assert "Traceback" not in parquet.stderr and len(parquet.stderr.strip().splitlines()) == 1
    dask = core("score", str(tmp_path), "--engine", "dask", "-o", str(tmp_path / "parts"), "--model", model_dir)
    assert dask.returncode != 0 and "pip install 'postsieve[dask]'" in dask.stderr


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def dask_score(cluster, *args, check=True):
    return run("score", *args, "--engine", "dask", "--scheduler", cluster.scheduler_address, check=check)


@pytest.fixture(scope="module")
def export(tmp_path_factory, model_dir):
    """Three part files, and the single-machine output of the same posts in one file."""
    root = tmp_path_factory.mktemp("export")
    (root / "parts").mkdir()
    for i in range(3):
        write_posts(root / "parts" / f"posts-{i}.jsonl", 60, start=i * 60)
    write_posts(root / "all.jsonl", 180)
    run("score", str(root / "all.jsonl"), "-o", str(root / "single.jsonl"), "--model", model_dir)
    return root


def test_dask_engine_equals_single_machine_post_for_post(model_dir, cluster, export, tmp_path):
    single = [json.loads(line) for line in (export / "single.jsonl").read_text().splitlines()]
    out = tmp_path / "scored"
    proc = dask_score(cluster, str(export / "parts"), "-o", str(out), "--model", model_dir, "--chunk-size", "25")
    assert "scored 180 posts" in proc.stderr
    names = sorted(p.name for p in out.iterdir() if p.name.startswith("part-"))
    assert names == [f"part-0000{i}.jsonl" for i in range(3)]
    got = [json.loads(line) for name in names for line in (out / name).read_text().splitlines()]
    assert got == single
    # a lost part is redone by --resume, the others are kept
    (out / names[1]).unlink()
    again = dask_score(cluster, str(export / "parts"), "-o", str(out), "--model", model_dir, "--resume")
    assert "(120 by the interrupted run" in again.stderr
    assert "postsieve: 3/3 parts: 180 posts" in again.stderr  # the parts done before count, as their posts do
    assert [json.loads(line) for name in names for line in (out / name).read_text().splitlines()] == single
    refused = dask_score(cluster, str(export / "parts"), "-o", str(out), "--model", model_dir, check=False)
    assert refused.returncode != 0 and "already holds part files" in refused.stderr
    # a resume with other settings would mix parts made two ways: refused, naming what changed
    (out / names[2]).unlink()
    for changed, named in ((("--only", "block"), "--only was none, now block"),
                           (("--output-format", "csv"), "--output-format was jsonl, now csv"),
                           (("--skip-bad",), "--skip-bad was off, now on")):
        mixed = dask_score(cluster, str(export / "parts"), "-o", str(out), "--model", model_dir, "--resume", *changed,
                           check=False)
        assert mixed.returncode != 0 and named in mixed.stderr and "Traceback" not in mixed.stderr
    assert not (out / names[2]).exists() and not list(out.glob("*.csv"))


def test_a_dask_run_stopped_by_a_bad_row_can_be_run_again_with_skip_bad(model_dir, cluster, tmp_path):
    """Only finished parts make a new run refuse the output folder; a part left unfinished by a
    bad row is simply redone."""
    src = tmp_path / "in"
    src.mkdir()
    write_posts(src / "posts.jsonl", 30)
    with (src / "posts.jsonl").open("a") as f:
        f.write("{not json\n")
    out = tmp_path / "scored"
    stopped = dask_score(cluster, str(src), "-o", str(out), "--model", model_dir, check=False)
    assert stopped.returncode != 0 and "Traceback" not in stopped.stderr
    again = dask_score(cluster, str(src), "-o", str(out), "--model", model_dir, "--skip-bad")
    assert "scored 30 posts" in again.stderr
    assert len((out / "part-00000.jsonl").read_text().splitlines()) == 30


def test_dask_engine_parquet_parts_from_a_glob_and_a_config_file(model_dir, cluster, export, tmp_path):
    import pyarrow.parquet as pq

    single = [{**json.loads(line), "id": str(json.loads(line)["id"])}
              for line in (export / "single.jsonl").read_text().splitlines()]
    out = tmp_path / "scored"
    config = tmp_path / "dask.yaml"  # the cluster named by a Dask config file instead of --scheduler
    config.write_text(f"scheduler-address: {cluster.scheduler_address}\n")
    proc = run("score", str(export / "parts" / "posts-*.jsonl"), "--engine", "dask", "--dask-config", str(config),
               "--output-format", "parquet", "-o", str(out), "--model", model_dir)
    assert f"connecting to the Dask scheduler at {cluster.scheduler_address}" in proc.stderr
    got = [row for i in range(3) for row in pq.read_table(out / f"part-0000{i}.parquet").to_pylist()]
    assert got == single


def test_a_dask_run_checks_every_part_s_mapping_before_scoring_any(model_dir, cluster, tmp_path):
    """A file with other columns was found only when its task failed, after other parts had been
    scored; it now fails at once, naming the file and the columns found, as the local engine does."""
    src = tmp_path / "in"
    src.mkdir()
    write_posts(src / "a.jsonl", 20)
    (src / "b.csv").write_text("pid,subject,message\n1,hi,hello\n")
    out = tmp_path / "scored"
    refused = dask_score(cluster, str(src), "-o", str(out), "--model", model_dir, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(f"Error: {src / 'b.csv'}")
    assert "columns found: pid, subject, message" in refused.stderr
    assert not out.exists() or not list(out.glob("part-*"))


def test_a_dask_input_that_cannot_be_read_is_one_line(model_dir, cluster, tmp_path):
    """Opened on the client for the mapping check, a .gz that is not gzip ended in a traceback."""
    src = tmp_path / "in"
    src.mkdir()
    write_posts(src / "a.jsonl", 5)
    (src / "b.jsonl.gz").write_bytes(b"not gzip at all")
    proc = dask_score(cluster, str(src), "-o", str(tmp_path / "scored"), "--model", model_dir, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"Error: {src / 'b.jsonl.gz'}: cannot read it")
