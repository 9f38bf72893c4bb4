"""``nasbench export`` as functions: a found network, as the protocol's final stage builds it
for inference (eval mode, no auxiliary head, which only trains), with the run's trained
weights where the store keeps them, written as an ONNX model that records where it comes from.

The network is exported with the settings the onnxruntime backend measures latencies under
(:func:`nasbench.hardware.measure.onnx_bytes`), so an exported network is the one measured.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from nasbench.errors import NasbenchError
from nasbench.hardware.measure import onnx_bytes
from nasbench.images import CIFAR10_MEAN, CIFAR10_STD
from nasbench.protocol import Protocol
from nasbench.spaces import get_space
from nasbench.spaces.base import SearchSpace
from nasbench.store import Store
from nasbench.stored_run import StoredRun
from nasbench.training import build_model
from nasbench.types import TensorState

INPUT, OUTPUT = "images", "logits"
UNTRAINED_SEED = 0
"""The seed of the weights a network without trained ones is exported with."""


@dataclass(frozen=True)
class ExportSource:
    """What is exported: an architecture of a space, the protocol whose final stage sizes its
    network, and the stored run it comes from with its trained weights, where there are."""

    name: str
    """How messages name it: ``run 7 (random-arch seed 0)`` or the genotype as given."""
    space: SearchSpace
    arch: Any
    protocol: Protocol
    run_id: int | None = None
    weights: TensorState | None = None


def stored_run(found: StoredRun) -> ExportSource:
    """The run ``found`` (:func:`~nasbench.stored_run.find_stored_run`) under its stored protocol
    and space, with its final weights where the store holds them."""
    row, run_id = found.row, found.row["id"]
    with Store(found.path, readonly=True) as store:
        weights = store.final_weights(run_id)
    built = get_space(row["space"], found.protocol)
    arch = built.from_dict(json.loads(row["genotype_json"]), where=f"run {run_id}'s genotype")
    return ExportSource(f"run {run_id} ({row['method']} seed {row['seed']})", built, arch, found.protocol, run_id, weights)


def final_network(source: ExportSource) -> nn.Module:
    """The network the protocol's final stage trains (:func:`~nasbench.training.build_model`,
    as the runner builds it) without the auxiliary head, on the CPU in eval mode, holding the
    run's trained weights, else freshly initialised ones (:data:`UNTRAINED_SEED`)."""
    stage = dataclasses.replace(source.protocol.final, auxiliary_weight=0.0)
    model = build_model(source.space, source.arch, stage, torch.device("cpu"), UNTRAINED_SEED)
    if source.weights is not None:
        try:
            model.load_state_dict(source.weights)
        except RuntimeError as err:
            raise NasbenchError(f"the stored weights of {source.name} do not fit its network as this nasbench builds "
                                f"it: {str(err).splitlines()[0]}") from None
    return model.eval()


def metadata(source: ExportSource) -> dict[str, str]:
    """The ONNX model's ``metadata_props``: where the network comes from and what it takes."""
    size = source.space.input_size
    return {
        "nasbench.run_id": "none" if source.run_id is None else str(source.run_id),
        "nasbench.space": source.space.name,
        "nasbench.protocol": source.protocol.name,
        "nasbench.protocol_hash": source.protocol.hash,
        "nasbench.genotype": json.dumps(source.space.to_dict(source.arch), sort_keys=True),
        "nasbench.weights": "untrained" if source.weights is None else "trained",
        "nasbench.input": f"{INPUT}: float32 (N, 3, {size}, {size}), RGB in [0, 1] normalised per channel with mean "
                          f"{list(CIFAR10_MEAN)} and std {list(CIFAR10_STD)}; {OUTPUT}: (N, classes)",
    }


def onnx_model(source: ExportSource, network: nn.Module) -> bytes:
    """``network`` as a checked ONNX model with a dynamic batch size and :func:`metadata`;
    image classifiers only (a language model's recurrent state is not exported yet)."""
    if source.space.task != "image":
        raise NasbenchError(f"export writes image classifiers; the {source.space.name} space's language models "
                            "cannot be exported yet")
    size = source.space.input_size
    image = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    model = onnx.load_from_string(onnx_bytes(network, [image], [INPUT], OUTPUT,
                                             {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}))
    onnx.helper.set_model_props(model, metadata(source))
    onnx.checker.check_model(model)
    return model.SerializeToString()


PARITY_TOLERANCE = 1e-4
"""The largest absolute difference between onnxruntime's and torch's logits an export accepts."""
PARITY_BATCH = 4


def parity(model: bytes, network: nn.Module, size: int) -> float:
    """The largest absolute difference between the logits onnxruntime computes from ``model`` and
    those torch computes from ``network`` on the same fixed random batch; an error above
    :data:`PARITY_TOLERANCE`, so that a file that computes something else is never written."""
    import onnxruntime

    images = torch.randn(PARITY_BATCH, 3, size, size, generator=torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (logits,) = session.run([OUTPUT], {INPUT: images.numpy()})
    with torch.no_grad():
        difference = (torch.from_numpy(logits) - network(images)).abs().max().item()
    if not difference <= PARITY_TOLERANCE:
        raise NasbenchError(f"the ONNX model computes logits up to {difference:.3g} away from torch's (tolerance "
                            f"{PARITY_TOLERANCE:g}): not written; please report it with the architecture")
    return difference


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a file beside it, renamed over it); the
    CLI checked that ``path`` can be written before any work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
