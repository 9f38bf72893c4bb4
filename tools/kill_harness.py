"""Figures for #20's note: random SIGKILLs of random search (slow protocol) resumed to the end
and compared with an uninterrupted run; two rival processes on the same runs.

Usage: NASBENCH_DATA=../shared/data/cifar10_subset.npz python tools/kill_harness.py CHECKOUT WORKDIR
(prints one JSON line per kill sequence, then the rivals and the totals; about 10 minutes)."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

root = Path(sys.argv[1]); work = Path(sys.argv[2]); work.mkdir(parents=True, exist_ok=True)
env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
proto = work / "slow.toml"; proto.write_text('base = "smoke"\n[search]\ncandidates = 4\n[candidate]\nepochs = 3\n')
def cmd(store, *extra):
    return [sys.executable, "-m", "nasbench", "run", "--method", "random", "--protocol", str(proto), "--seeds", "0",
            "--store", str(store), "--no-progress", "--no-estimate", "--json", *extra]
def rows(store):
    c = sqlite3.connect(store); c.row_factory = sqlite3.Row
    return [dict(r) for r in c.execute("SELECT * FROM runs ORDER BY id")]
ref = work / "ref.sqlite"
subprocess.run(cmd(ref), env=env, cwd=root, check=True, capture_output=True)
(reference,) = rows(ref)
fields = ("genotype_json", "val_acc", "test_acc", "params", "flops")
rng = random.Random(20)
results = []
for i in range(12):
    store = work / f"k{i}.sqlite"
    kills, resumed_lines = 0, []
    for attempt in range(3):  # up to two kills, then a run to the end
        p = subprocess.Popen(cmd(store), env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if attempt < 2:
            time.sleep(rng.uniform(2, 9))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL); kills += 1
        out, err = p.communicate()
        resumed_lines += [l for l in err.splitlines() if "resuming" in l or "restarting" in l]
    rs = rows(store)
    equal = len(rs) == 1 and rs[0]["status"] == "finished" and all(rs[0][f] == reference[f] for f in fields)
    results.append({"sequence": i, "kills": kills, "rows": [(r["id"], r["status"]) for r in rs], "equal": equal,
                    "said": resumed_lines})
    print(json.dumps(results[-1]), flush=True)
# rivals: two processes started together on the same four runs
store = work / "rivals.sqlite"
both = [subprocess.Popen([sys.executable, "-m", "nasbench", "run", "--method", "random,random-arch", "--protocol",
                          str(proto), "--seeds", "0,1", "--store", str(store), "--no-progress", "--no-estimate", "--json"],
                         env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
codes = [p.wait() for p in both]
rs = rows(store)
keys = [(r["method"], r["seed"]) for r in rs]
print(json.dumps({"rivals_exit_codes": codes, "rows": len(rs), "distinct_keys": len(set(keys)),
                  "statuses": sorted({r["status"] for r in rs})}))
print(json.dumps({"kill_sequences": len(results), "kills": sum(r["kills"] for r in results),
                  "equal": sum(r["equal"] for r in results)}))
