"""A space's description imports no torch: every space, laid out as the smoke protocol lays
it out, draws, mutates, reads and writes its architectures, lists its zoo, draws them and
enumerates its cost parts in an interpreter that never loads torch, so that the command line
answers a wrong zoo name or an incomplete cost table before torch loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import REPO_ROOT, SUBPROCESS_ENV

from nasbench.spaces import SPACES

DESCRIBE_EVERY_SPACE = r"""
import json, random, sys
from nasbench.errors import NasbenchError
from nasbench.protocol import load_protocol
from nasbench.spaces import SPACES, get_space
from nasbench.types import NetworkConfig

protocol = load_protocol("smoke")
done = {}
for name in SPACES:
    space = get_space(name, protocol)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(5)] + [entry.arch for entry in space.zoo().values()]
    assert all(space.from_dict(json.loads(json.dumps(space.to_dict(arch)))) == arch for arch in archs)
    str(archs[0]), space.skip_share(archs[0]), space.profile_sample(rng)
    steps = {"archs": len(archs)}
    for step, act in {"mutate": lambda: space.mutate(archs[0], rng), "graph": lambda: space.graph(archs[0])}.items():
        try:
            act()
            steps[step] = True
        except NasbenchError:
            steps[step] = False
    parts = 0
    for window in (False, True):
        try:
            config = (space.cost_network_config(protocol, window)
                      or NetworkConfig(channels=protocol.final.channels, cells=protocol.final.cells))
            parts += len(space.all_cost_parts(config)) + sum(len(space.cost_parts(arch, config)) for arch in archs)
            space.cost_layout(config)
        except NasbenchError:
            continue
    steps["parts"] = parts
    done[name] = steps
print(json.dumps({"torch": "torch" in sys.modules, "spaces": done}))
"""

COSTED = {"cell", "fbnet", "enas-rnn", "nasrl-rnn"}
"""The spaces with a cost decomposition (their cost tables' parts are enumerated here)."""


def test_every_space_describes_itself_without_torch():
    done = subprocess.run([sys.executable, "-c", DESCRIBE_EVERY_SPACE], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert set(found["spaces"]) == set(SPACES)
    assert {name for name, steps in found["spaces"].items() if steps["parts"]} == COSTED
    assert found["torch"] is False
