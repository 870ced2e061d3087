"""`scan --dask`: the same work items on a real Dask cluster give the same bytes as a local scan,
also when a worker process is killed while it holds tasks.

One LocalCluster (2 single-threaded worker processes) is shared by the module: starting one costs
about a second. The killed-worker test runs last and waits for the nanny to bring the worker back.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import SAMPLES, SHARED_CORPUS, run_cli
from umtriage.pipeline.dask_engine import DaskEngine, DaskError, parse_spec
from umtriage.pipeline.procenv import PARALLEL_SCAN_ENV
from umtriage.pipeline.process import ScanOptions
from umtriage.pipeline.scan import plan_work, run_scan
from umtriage.pipeline.sources import list_units

distributed = pytest.importorskip("distributed")  # part of the test extra; a clear skip if someone lacks it

GEN_PATH = Path(__file__).resolve().parents[1] / "bench" / "gen_wulog.py"
if "gen_wulog" in sys.modules:  # test_bench_gen loaded it already
    gen = sys.modules["gen_wulog"]
else:
    _spec = importlib.util.spec_from_file_location("gen_wulog", GEN_PATH)
    gen = importlib.util.module_from_spec(_spec)
    sys.modules["gen_wulog"] = gen  # dataclasses look their module up while the class is built
    _spec.loader.exec_module(gen)

PUBLIC = SHARED_CORPUS / "public"
#: Small enough that the generated bundle's bigger files are cut into ranges for the 2 workers.
SPLIT = ScanOptions(split_min_bytes=256 << 10)
WAIT = 60  # seconds: every wait on the cluster is bounded


@pytest.fixture(scope="module")
def cluster():
    env = {k: os.environ.get(k, v) for k, v in PARALLEL_SCAN_ENV.items()}
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address=":0", env=env)
    try:
        yield c
    finally:
        children = [p for p in psutil.Process().children(recursive=True)  # not multiprocessing's resource tracker
                    if not any("resource_tracker" in part for part in p.cmdline())]
        c.close(timeout=WAIT)
        _, alive = psutil.wait_procs(children, timeout=WAIT)
        assert not alive, f"worker processes left running: {alive}"


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster.scheduler_address, timeout=WAIT) as c:
        c.wait_for_workers(2, timeout=WAIT)
        yield c


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A small fleet: 60 hosts of ~60 KB (grouped) and 4 hosts of 3 MB (cut into ranges with SPLIT)."""
    root = tmp_path_factory.mktemp("fleet")
    gen.write_bundle(root, 60, 60_000, seed=7)
    for i in range(4):
        (root / f"BIG-{i:02d}").mkdir()
        gen.write_log(root / f"BIG-{i:02d}" / "WindowsUpdate.log", 3 << 20, form="mixed" if i % 2 else "win10",
                      seed=10 + i, host=f"BIG-{i:02d}")
    return root


@pytest.fixture(scope="module")
def local_split(bundle, tmp_path_factory) -> Path:
    """The reference: the local process pool, 2 jobs, the same plan (groups, files, ranges)."""
    out = tmp_path_factory.mktemp("local-split")
    run_scan([bundle], out, SPLIT, jobs=2, formats=("csv",))
    return out


def tables(out: Path) -> dict[str, bytes]:
    """The published tables (links into the run folder are followed; the lock and runs are not tables)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and p.name != "summary.json" and not p.name.startswith(".")}


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_same_scan(got: Path, want: Path, *, also_differs: tuple[str, ...] = ()) -> None:
    """Byte-identical tables, and the same accounting apart from how the run was executed."""
    t_got, t_want = tables(got), tables(want)
    assert sorted(t_got) == sorted(t_want)
    assert {"incidents.parquet", "matches.parquet", "rejects.parquet", "unmatched.parquet"} <= set(t_got)
    for name in t_want:
        assert t_got[name] == t_want[name], name
    s_got, s_want = summary(got), summary(want)
    for s in (s_got, s_want):
        for key in ("run", "elapsed_seconds", *also_differs):
            s.pop(key)
    assert s_got == s_want
    assert s_got["accounted"]


def test_spec_parsing() -> None:
    assert parse_spec("local") == (None, None)
    assert parse_spec("local:3") == (None, 3)
    assert parse_spec("tcp://10.0.0.5:8786") == ("tcp://10.0.0.5:8786", None)
    for bad in ("local:0", "local:x", "", "--x"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def _marked(mark: str) -> list[int]:
    """Live processes that inherited the environment variable UMTRIAGE_TEST_MARK=mark."""
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("UMTRIAGE_TEST_MARK") == mark:
                found.append(p.info["pid"])
        except (psutil.Error, OSError):
            continue
    return found


def test_cli_local2_on_samples_equals_a_local_scan(tmp_path: Path) -> None:
    mark = f"dask-cli-{os.getpid()}-{time.monotonic_ns()}"
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path / "local"), "-q", "--jobs", "2", "--format", "csv")
    assert r.returncode == 0, r.stderr
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path / "dask"), "-q", "--dask", "local:2", "--format", "csv",
                timeout=120, env={**os.environ, "UMTRIAGE_TEST_MARK": mark})
    assert r.returncode == 0, r.stderr
    assert_same_scan(tmp_path / "dask", tmp_path / "local")
    deadline = time.monotonic() + WAIT
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _marked(mark) == []  # the CLI's LocalCluster (nannies, workers) is gone with it
    run = summary(tmp_path / "dask")["run"]
    assert run["engine"] == "dask" and run["workers"] == 2 and run["scheduler"].startswith("tcp://127.0.0.1:")
    assert summary(tmp_path / "local")["run"]["engine"] == "local"


def test_cli_scheduler_address_on_a_generated_bundle(client, cluster, bundle, tmp_path: Path) -> None:
    r = run_cli("scan", str(bundle), "-o", str(tmp_path / "local"), "-q", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    r = run_cli("scan", str(bundle), "-o", str(tmp_path / "dask"), "-q", "--dask", cluster.scheduler_address,
                timeout=120)
    assert r.returncode == 0, r.stderr
    assert_same_scan(tmp_path / "dask", tmp_path / "local")
    run = summary(tmp_path / "dask")["run"]
    assert run["scheduler"] == cluster.scheduler_address and run["workers"] == 2
    assert summary(tmp_path / "dask")["files"] == 64


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="../shared/corpus is not present")
def test_public_corpus_on_the_cluster_equals_a_local_scan(client, cluster, tmp_path: Path) -> None:
    local, dask = tmp_path / "local", tmp_path / "dask"
    run_scan([PUBLIC], local, SPLIT, jobs=2)
    with DaskEngine(cluster.scheduler_address, run_timeout=WAIT) as engine:
        run_scan([PUBLIC], dask, SPLIT, engine=engine)
    assert_same_scan(dask, local)


def test_groups_files_and_ranges_all_run_on_the_cluster(client, cluster, bundle, local_split, tmp_path) -> None:
    items = plan_work(list_units([bundle])[0], 2, SPLIT)
    assert any(it.end is not None and it.part > 0 for it in items)  # ranges of a cut file
    assert any(len(it.units) > 1 for it in items)  # groups of small files
    seen: list[int] = []
    with DaskEngine(cluster.scheduler_address, run_timeout=WAIT) as engine:
        assert engine.slots == 2
        run_scan([bundle], tmp_path, SPLIT, engine=engine, formats=("csv",), on_unit=lambda i, n: seen.append(i))
    assert sorted(seen) == [it.index for it in items]  # each item reported once
    assert_same_scan(tmp_path, local_split)
    assert not list(tmp_path.glob(".parts*"))


def test_fsspec_urls_in_and_out_equal_a_local_scan(client, cluster, bundle, tmp_path: Path) -> None:
    """Inputs the workers fetch themselves (a folder and one object), tables uploaded by the client."""
    big = bundle / "BIG-01" / "WindowsUpdate.log"
    r = run_cli("scan", str(SAMPLES), str(big), "-o", str(tmp_path / "local"), "-q", "--format", "csv")
    assert r.returncode == 0, r.stderr
    r = run_cli("scan", SAMPLES.as_uri(), big.as_uri(), "-o", (tmp_path / "url").as_uri(), "-q", "--format", "csv",
                "--dask", cluster.scheduler_address, timeout=120)
    assert r.returncode == 0, r.stderr
    assert_same_scan(tmp_path / "url", tmp_path / "local", also_differs=("inputs",))
    assert summary(tmp_path / "url")["inputs"] == [SAMPLES.as_uri(), big.as_uri()]
    assert all(p.is_file() and not p.is_symlink() and not p.name.startswith(".") for p in (tmp_path / "url").iterdir())
    r = run_cli("scan", SAMPLES.as_uri(), "-o", str(tmp_path / "x"), "-q")
    assert r.returncode == 2 and "need --dask" in r.stderr
    assert not (tmp_path / "x" / "summary.json").exists()
    with pytest.raises(DaskError, match="cannot list"):
        DaskEngine(cluster.scheduler_address, urls=((tmp_path / "absent").as_uri(),)).open()


def test_url_inputs_follow_no_links_and_report_them(client, cluster, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.log").write_text("2024-01-01 00:00:00 ERROR secret 0x8024402C\n")
    root = tmp_path / "HOST01"
    root.mkdir()
    (root / "WindowsUpdate.log").write_bytes((SAMPLES / "SRV-WSUS01" / "WindowsUpdate.log").read_bytes())
    (root / "link.log").symlink_to(tmp_path / "outside" / "secret.log")
    with DaskEngine(cluster.scheduler_address, urls=(root.as_uri(),), run_timeout=WAIT) as engine:
        s = run_scan([], tmp_path / "out", ScanOptions(), engine=engine).summary
    assert [f["source"] for f in s["sources"]] == ["WindowsUpdate.log"]
    assert [(p["source"], p["reason"]) for p in s["problems"]] == [("link.log", "special_file")]
    assert s["inputs"] == [root.as_uri()] and s["hosts"] == ["host01"]


def test_a_cluster_whose_workers_lack_umtriage_is_refused_before_any_task(tmp_path: Path) -> None:
    preload = tmp_path / "no_umtriage.py"  # runs in the worker process: umtriage cannot be imported there
    preload.write_text("import sys\nsys.modules['umtriage'] = None\n")
    with (distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=":0", preload=[str(preload)]) as other,
          pytest.raises(DaskError, match="cannot run umtriage")):
        DaskEngine(other.scheduler_address).open()


def test_without_dask_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    # the real CLI in a real process in which the distributed package cannot be imported
    code = ("import sys; sys.modules['distributed'] = None; from umtriage.pipeline.cli import main; "
            f"sys.exit(main(['scan', {str(SAMPLES)!r}, '-o', {str(tmp_path / 'o')!r}, '--dask', 'local:2']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "pip install 'umtriage[dask]'" in r.stderr
    assert not (tmp_path / "o" / "summary.json").exists()  # no tables (the folder itself is checked first)
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path / "o"), "--dask", "local:0")
    assert r.returncode == 2 and "local:N" in r.stderr


def test_a_plain_scan_and_help_never_import_dask(tmp_path: Path) -> None:
    code = ("import sys; from umtriage.pipeline.cli import main\n"
            "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules)); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "scan", str(SAMPLES), "-o", str(tmp_path), "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    r = subprocess.run([sys.executable, "-c", code, "scan", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--dask ADDRESS" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_a_worker_killed_mid_scan_loses_and_duplicates_nothing(client, cluster, bundle, local_split,
                                                               tmp_path) -> None:
    """SIGKILL the process of a worker that holds tasks: the scheduler re-runs them on the other one."""
    pids = client.run(os.getpid)
    victim: dict = {}
    seen: list[int] = []

    def on_unit(index: int, nbytes: int) -> None:
        seen.append(index)
        if victim:
            return
        busy = {w: keys for w, keys in client.processing().items() if keys}
        if busy:
            addr, keys = sorted(busy.items())[0]
            os.kill(pids[addr], signal.SIGKILL)
            victim.update(addr=addr, pid=pids[addr], keys=list(keys))

    with DaskEngine(cluster.scheduler_address, run_timeout=WAIT) as engine:
        run_scan([bundle], tmp_path, SPLIT, engine=engine, formats=("csv",), on_unit=on_unit)
    assert victim, "no worker was busy when the first result came in"
    assert sorted(seen) == list(range(len(plan_work(list_units([bundle])[0], 2, SPLIT))))  # once each
    assert_same_scan(tmp_path, local_split)

    def story(dask_scheduler, keys):  # where each lost task finished: never on the dead worker
        return {k: [(s[1], s[2]) for s in dask_scheduler.story(k)] for k in keys}

    stories = client.run_on_scheduler(story, keys=victim["keys"])
    def rerun(transitions: list) -> bool:  # lost with the worker, then computed once more
        lost = [i for i, t in enumerate(transitions) if t[0] == "processing" and t[1] != "memory"]
        return bool(lost) and ("processing", "memory") in transitions[lost[0]:]

    assert any(rerun(t) for t in stories.values()), stories
    assert all(("processing", "memory") in t for t in stories.values()), stories
    with pytest.raises(ProcessLookupError):
        os.kill(victim["pid"], 0)  # the process really is gone
    client.wait_for_workers(2, timeout=WAIT)  # the nanny restarted it: leave the cluster as found
    deadline = time.monotonic() + WAIT
    while victim["addr"] in client.nthreads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert victim["addr"] not in client.nthreads()
