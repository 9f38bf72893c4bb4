"""Where a number came from: device, its fingerprint, software versions, git commit."""
from __future__ import annotations

import os
import platform
import re
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nasbench.errors import NasbenchError
from nasbench.types import Provenance

if TYPE_CHECKING:
    from nasbench.protocol import Protocol

PACKAGES = ("torch", "torchvision", "numpy", "fvcore", "onnx", "onnxruntime", "pandas")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise NasbenchError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise NasbenchError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def cpu_signature() -> str:
    """Family/model/stepping: tells apart CPUs that share a marketing name."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("cpu family", "model", "stepping") and key.strip() not in fields:
                fields[key.strip()] = value.strip()
    except OSError:
        return ""
    return "f{}m{}s{}".format(fields.get("cpu family", "?"), fields.get("model", "?"), fields.get("stepping", "?"))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} cores)"


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def device_fingerprint(device: torch.device) -> str:
    """A folder-safe name that identifies the hardware, e.g. ``cpu-intel-xeon-processor-f6m143s8-2c``."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda-{_slug(torch.cuda.get_device_name(device))}-sm{major}{minor}"
    return f"cpu-{_slug(cpu_model())}-{cpu_signature()}-{os.cpu_count()}c"


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "nasbench": _version("nasbench")}
    versions.update({name: _version(name) for name in PACKAGES})
    if torch.version.cuda:
        versions["cuda"] = torch.version.cuda
    return versions


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@cache
def git_commit() -> str | None:
    """The commit of the nasbench source tree, ``+dirty`` when it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def stored_provenance(protocol: "Protocol", device: torch.device) -> Provenance:
    """Where a stored result comes from (a run's or a ranking's): the protocol in full, the
    device and its fingerprint, software versions, the git commit."""
    return Provenance(protocol=protocol.name, protocol_json=protocol.to_json(), device=device_name(device),
                      device_fingerprint=device_fingerprint(device), software=software_versions(),
                      git_commit=git_commit())
