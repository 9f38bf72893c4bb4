"""#19's crash-and-resume harness: runs SIGKILLed at random times (in the search, a
candidate's training or the final training), rerun to the end, and compared with an
uninterrupted run of the same method; a kill may lose only the epoch (or search step) in
flight: the rerun must resume every training from the epochs the store held at the kill.

Usage: NASBENCH_DATA=../shared/data/cifar10_subset.npz python tools/resume_harness.py CHECKOUT WORKDIR
       [--methods random,darts,nas-rl] [--sequences 2] [--kills 2] [--seed 19] [--run-args '--workers 2']
Each kill comes at a random time after the run's process claimed it (start-up is left out).
One JSON line per kill and per sequence, then the totals (about 8 minutes on 2 CPU cores)."""
import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

PROTOCOL = """base = "smoke"
[search]
candidates = 3
[candidate]
epochs = 3
[final]
epochs = 6
[search.supernet]
epochs = 3
"""
"""Every stage several epochs long, so that kills land inside trainings as well as between them."""
RESULT = ("genotype_json", "val_acc", "test_acc", "params", "flops")
STEP = re.compile(r"(resuming|restarting) .* from step (\d+) of (\d+)")
NOTHING_TO_RESUME = ("setting up, before the run's row", "after the run was stored")
BETWEEN = "between trainings"
"""Where a kill landed, as the store tells it, until the resumed run says its search step."""
EPOCH = re.compile(r"(candidate \d+|the final training) resumes from epoch (\d+) of (\d+)")


def command(method: str, store: Path, protocol: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "nasbench", "run", "--method", method, "--protocol", str(protocol), "--seeds", "0",
            "--store", str(store), "--no-progress", "--no-estimate", "--json", *extra]


def read(store: Path) -> tuple[list[dict], dict[str, int]]:
    """The store's runs and its epoch checkpoints by stage (as a killed process left them)."""
    if not store.exists():
        return [], {}
    with closing(sqlite3.connect(store, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        try:
            stages = {r["stage"]: r["epochs"] for r in conn.execute("SELECT stage, epochs FROM stage_checkpoints")}
        except sqlite3.OperationalError:  # killed while creating the schema
            return [], {}
        return [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY id")], stages


def claimed(store: Path, process: subprocess.Popen) -> float:
    """When ``process`` holds the claim on its run and the run's row is running (its work
    begins: start-up is not a point worth killing at), or now if it exited first."""
    while process.poll() is None:
        if store.exists():
            with closing(sqlite3.connect(store, timeout=30)) as conn:
                try:
                    if conn.execute("SELECT 1 FROM claims WHERE pid=?", (process.pid,)).fetchone() and \
                            conn.execute("SELECT 1 FROM runs WHERE status='running'").fetchone():
                        return time.monotonic()
                except sqlite3.OperationalError:  # the schema is being created
                    pass
        time.sleep(0.01)
    return time.monotonic()


def where(runs: list[dict], stages: dict[str, int]) -> str:
    """Where a kill landed, as the store tells it."""
    if not runs:
        return "setting up, before the run's row"
    if runs[-1]["status"] == "finished":
        return "after the run was stored"
    if "final" in stages:
        return f"final training ({stages['final']} epochs saved)"
    candidates = [f"{label} ({done} epochs saved)" for label, done in stages.items()]
    if candidates:
        return "search, " + ", ".join(candidates)
    return BETWEEN if runs[-1]["state_json"] else "search, before its first checkpoint"


def uninterrupted(method: str, store: Path, protocol: Path, extra: list[str], env: dict, args) -> tuple[float, dict]:
    """The seconds of an uninterrupted run's work (after its claim) and its stored run."""
    store.unlink(missing_ok=True)
    process = subprocess.Popen(command(method, store, protocol, extra), env=env, cwd=args.checkout,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    began = claimed(store, process)
    assert process.wait() == 0, f"the uninterrupted {method} run failed"
    seconds = time.monotonic() - began
    (row,), _ = read(store)
    return seconds, row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--methods", default="random,darts,nas-rl")
    parser.add_argument("--sequences", type=int, default=2, help="kill sequences per method")
    parser.add_argument("--kills", type=int, default=2, help="kills per sequence before a run to the end")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--run-args", default="", help="more `nasbench run` options for the killed runs, e.g. "
                                                       "'--workers 2 --cpus-per-task 1' (the driver of Ray tasks)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    protocol = args.work / "resume.toml"
    protocol.write_text(PROTOCOL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rng = random.Random(args.seed)
    totals = {"kills_tried": 0, "kills_landed": 0, "resumed": 0, "equal": 0, "epochs_lost_beyond_one": 0}
    for method in args.methods.split(","):
        seconds, expected = uninterrupted(method, args.work / f"{method}-reference.sqlite", protocol, [], env, args)
        record = {"method": method, "uninterrupted_work_s": round(seconds, 1)}
        if args.run_args:  # the kills' window is the killed command's own time; its result must be the in-process one
            seconds, same = uninterrupted(method, args.work / f"{method}-timed.sqlite", protocol,
                                          args.run_args.split(), env, args)
            record |= {"with_run_args_work_s": round(seconds, 1),
                       "with_run_args_equal": all(same[f] == expected[f] for f in RESULT)}
        print(json.dumps(record), flush=True)
        for sequence in range(args.sequences):
            store = args.work / f"{method}-{sequence}.sqlite"
            store.unlink(missing_ok=True)
            landed: list[dict] = []
            for attempt in range(args.kills + 1):
                process = subprocess.Popen(command(method, store, protocol, args.run_args.split()), env=env, cwd=args.checkout,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                if attempt < args.kills:
                    totals["kills_tried"] += 1
                    at = rng.uniform(0, seconds * (0.9 if attempt == 0 else 0.5))  # a resumed run has less to do
                    time.sleep(max(0.0, claimed(store, process) + at - time.monotonic()))
                    if process.poll() is None:
                        process.send_signal(signal.SIGKILL)
                _, err = process.communicate()
                steps = STEP.search(err)
                said = {m.group(1): int(m.group(2)) for m in EPOCH.finditer(err)}

                def reported(kill: dict) -> bool:
                    """This attempt said where it resumed each of the kill's trainings from, or ran to
                    the end (a killed one may not have said it yet: a Ray task's lines reach the
                    driver a moment after it starts; it then did no work on them)."""
                    return process.returncode == 0 or steps is not None and all(
                        ("the final training" if label == "final" else label) in said for label in kill["saved"])

                # what this attempt resumed the kills before it from
                for kill in [k for k in landed if "resumed_from" not in k and reported(k)]:
                    kill["resumed_from"] = {"search step": int(steps.group(2)) if steps else None, **said}
                    if kill["where"] == BETWEEN and steps:
                        done, budget = int(steps.group(2)), int(steps.group(3))
                        kill["where"] = ("final training, before its first epoch was saved" if done == budget else
                                         f"search, {done} of {budget} steps saved")
                    lost = sum(max(0, done - said.get("the final training" if label == "final" else label, 0))
                               for label, done in kill["saved"].items())
                    kill["epochs_lost_beyond_the_one_in_flight"] = lost
                    totals["resumed"] += (steps is not None or kill["where"] in NOTHING_TO_RESUME) and lost == 0
                    totals["epochs_lost_beyond_one"] += lost
                if attempt < args.kills and process.returncode == -signal.SIGKILL:
                    runs, stages = read(store)
                    landed.append({"method": method, "sequence": sequence, "kill": attempt, "at_s": round(at, 1),
                                   "where": where(runs, stages), "saved": stages})
                    totals["kills_landed"] += 1
            runs, _ = read(store)
            equal = len(runs) == 1 and runs[0]["status"] == "finished" and all(runs[0][f] == expected[f] for f in RESULT)
            for kill in landed:
                print(json.dumps(kill), flush=True)
            totals["equal"] += equal * len(landed)
            print(json.dumps({"method": method, "sequence": sequence, "kills": len(landed), "equal": equal,
                              "rows": [(r["id"], r["status"]) for r in runs]}), flush=True)
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main()
