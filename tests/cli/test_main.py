"""The entry point: answers that need no torch import none, ``--version``, a reader that
goes away, and where a user's results go by default."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest
from helpers import REPO_ROOT, SUBPROCESS_ENV

COUNT_IMPORTS = """
import contextlib, io, json, sys
before = set(sys.modules)
from nasbench.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
    code = main(sys.argv[1:])
loaded = sorted(set(sys.modules) - before)
print(json.dumps({"code": code, "err": err.getvalue(), "torch": "torch" in sys.modules,
                  "nasbench": [m for m in loaded if m.startswith("nasbench")], "count": len(loaded)}))
"""


def imports_of(*argv: str, cwd=REPO_ROOT) -> dict:
    """What ``nasbench ARGV`` imports, counted in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", COUNT_IMPORTS, *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **SUBPROCESS_ENV}, check=True, timeout=120)
    return json.loads(done.stdout)


INPUT_CHECKS = {"nasbench.hardware.constraint_options"}
"""A module under the plugins' packages that only checks input, importing neither torch nor numpy."""

QUICK = {
    "help": (("--help",), 0),
    "version": (("--version",), 0),
    "list-methods": (("list", "methods"), 0),
    "list-spaces": (("list", "spaces"), 0),
    "list-protocols": (("list", "protocols"), 0),
    "unknown-method": (("run", "--method", "no-such-method"), 2),
    "unknown-space": (("run", "--method", "random", "--space", "no-such-space"), 2),
    "unknown-protocol": (("run", "--method", "random", "--protocol", "no-such-protocol"), 2),
    "negative-seed": (("run", "--method", "random", "--seeds", "-1"), 2),
    "unknown-option": (("run", "--method", "random", "--sedes", "1"), 2),
    "store-under-a-file": (("run", "--method", "random", "--store", "README.md/results.sqlite"), 2),
    "unknown-device": (("run", "--method", "random", "--device", "tpu"), 2),
    "data-missing": (("run", "--method", "random", "--data", "nowhere.npz", "--store", "{tmp}/s.sqlite"), 2),
    "data-not-images": (("run", "--method", "darts", "--data", "pyproject.toml", "--store", "{tmp}/s.sqlite"), 2),
    "data-too-small": (("run", "--method", "random", "--protocol", "full", "--data", "{data}", "--store",
                        "{tmp}/s.sqlite"), 2),
}


@pytest.mark.parametrize("case", QUICK)
def test_answers_that_need_no_network_import_no_torch(case, tmp_path, data_path):
    argv, code = QUICK[case]
    found = imports_of(*(arg.format(tmp=tmp_path, data=data_path) for arg in argv))
    assert found["code"] == code, found["err"]
    assert not found["torch"], f"`nasbench {' '.join(argv)}` imported torch"
    # a plugin's settings class built from its source (``<module>:source``) is not its module, nor is
    # the check of a run's constraint options from the methods' cards
    plugins = [m for m in found["nasbench"] if m.startswith(("nasbench.strategies.", "nasbench.spaces.", "nasbench.hardware."))
               and not (REPO_ROOT / m.replace(".", "/") / "__init__.py").is_file() and not m.endswith(":source")
               and m not in INPUT_CHECKS]
    assert plugins == [], plugins
    # the standard library's share included, and numpy's (about 150) where an .npz is read; with torch over 1000
    assert found["count"] < (400 if case.startswith("data-") else 200), found["count"]


@pytest.mark.parametrize("section, value, message", [
    ("search.spos", "population = 0", "[search.spos]: need 1 <= select <= population"),
    ("search.evolution", "population = 500", "population must not exceed [search] candidates"),
    ("plain_cnn", "blocks = 0", "[plain_cnn]"),
])
def test_a_bad_value_in_a_plugins_section_is_refused_without_torch(tmp_path, section, value, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'base = "smoke"\n\n[{section}]\n{value}\n')
    found = imports_of("run", "--method", "random", "--protocol", str(path), "--store", str(tmp_path / "s.sqlite"))
    assert found["code"] == 2 and message in found["err"] and found["err"].count("\n") == 1, found["err"]
    assert not found["torch"], "a bad protocol value imported torch"


def test_a_run_imports_torch_and_its_methods_once_the_input_is_good(tmp_path, data_path):
    found = imports_of("run", "--method", "random", "--protocol", "smoke", "--store", str(tmp_path / "s.sqlite"),
                       "--data", str(data_path), "--no-progress", "--no-estimate")
    assert found["code"] == 0 and found["torch"] and "nasbench.strategies.random_search" in found["nasbench"]


def test_version():
    done = subprocess.run([sys.executable, "-m", "nasbench", "--version"], capture_output=True, text=True,
                          cwd=REPO_ROOT, check=True)
    assert done.stdout == f"nasbench {version('nasbench')}\n"


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """``nasbench list protocols --json | head -c 50``: no BrokenPipeError traceback."""
    command = f"{sys.executable} -m nasbench list methods --json | head -c 50; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert len(done.stdout) == 50 and done.stderr == ""
    assert done.returncode in (0, 141)  # 141: the write failed and nasbench ended as SIGPIPE would


def test_a_users_results_go_to_a_folder_of_theirs(tmp_path):
    default = subprocess.run([sys.executable, "-m", "nasbench", "list", "runs"], capture_output=True, text=True,
                             cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "NASBENCH_RESULTS"})
    assert default.returncode == 2
    assert default.stderr == "nasbench: error: no results store at nasbench-results/results.sqlite; run `nasbench run " \
                             "...` first or pass --store PATH\n"
    chosen = subprocess.run([sys.executable, "-m", "nasbench", "report", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "NASBENCH_RESULTS": str(tmp_path / "mine"), "COLUMNS": "400"})
    assert f"(default: {tmp_path / 'mine' / 'results.sqlite'}, under $NASBENCH_RESULTS" in chosen.stdout
    assert f"(default: {tmp_path / 'mine' / 'reports'})" in chosen.stdout
