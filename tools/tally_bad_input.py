"""The tally of #20's note: every case of tests/cli/test_bad_input.py run in-process against
the nasbench of CHECKOUT, each classified as clean (exit 2, one line, no file changed),
traceback, accepted (exit 0 or 1) or unclean (exit 2, but several lines or a changed file).

Usage: NASBENCH_DATA=../shared/data/cifar10_subset.npz python tools/tally_bad_input.py CHECKOUT
(CHECKOUT's nasbench must come first on sys.path, e.g. PYTHONPATH=CHECKOUT for an older commit).
"""
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

root = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(root / "tests"))
spec = importlib.util.spec_from_file_location("bad_input", root / "tests/cli/test_bad_input.py")
bad = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bad)

import torch  # noqa: E402 (after the test module, as the suite imports it)
from helpers import run_cli, subset_path  # noqa: E402

from nasbench.protocol import load_protocol  # noqa: E402
from nasbench.spaces import get_space  # noqa: E402

torch.set_num_threads(1)


class Folders:
    """What the workspace fixture asks of pytest's tmp_path_factory."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp())

    def mktemp(self, name: str) -> Path:
        (self.base / name).mkdir()
        return self.base / name


workspace = bad.workspace.__wrapped__(Folders(), subset_path(), load_protocol("smoke"), get_space("cell"))
tally: dict[str, list[str]] = {}
for case, (argv, _) in bad.CASES.items():
    folder = Path(workspace["dir"])
    before = bad.listing(folder)
    try:
        result = run_cli(*(arg.format(**workspace) for arg in argv))
        lines, same = result.err.splitlines(), bad.listing(folder) == before
        one_line = len(lines) == 1 and lines[0].startswith("nasbench: error: ")
        kind = "clean" if result.code == 2 and one_line and same else "unclean" if result.code == 2 else "accepted"
        detail = (lines or [""])[-1][:150] + ("" if same else " (files changed)")
    except SystemExit as stop:  # argparse's own exit (before #20): a usage block, then the error
        kind, detail = ("unclean" if stop.code == 2 else "accepted"), f"argparse exit {stop.code}"
    except Exception as err:  # what escapes the command line is a traceback for its user
        kind, detail = "traceback", f"{type(err).__name__}: {err}"[:150]
    tally.setdefault(kind, []).append(case)
    print(f"{case:28s} {kind:10s} {detail}", flush=True)
print(json.dumps({kind: len(cases) for kind, cases in tally.items()}))
