"""Exporting found networks (nasbench/export.py): onnxruntime computes what torch computes for
a network of every space, the network is the runner's final one without its auxiliary head,
and the model says where it comes from."""
from __future__ import annotations

import json
import random

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from nasbench.errors import NasbenchError
from nasbench.export import (
    ExportSource,
    final_network,
    onnx_model,
    parity,
)
from nasbench.hardware.counting import AUXILIARY_PREFIX, count_params
from nasbench.spaces import SPACES, get_space
from nasbench.training import build_model

PARITY = 1e-4
"""The largest difference between onnxruntime's and torch's logits the issue allows."""


def populated(network: torch.nn.Module, size: int, generator: torch.Generator) -> torch.nn.Module:
    """``network`` with batch-norm statistics other than their initial 0 and 1 (a few forward
    passes in training mode), so that folding them into the graph is exercised."""
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(2 * torch.randn(8, 3, size, size, generator=generator) + 0.5)
    return network.eval()


def onnx_logits(model: bytes, images: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": images.numpy()})
    return torch.from_numpy(logits)


@pytest.mark.parametrize("space_name", [name for name in SPACES if SPACES[name].task != "image"])
def test_a_language_model_is_refused_in_one_line(space_name, smoke):
    space = get_space(space_name, smoke)
    source = ExportSource(space_name, space, space.sample(random.Random(1)), smoke)
    with pytest.raises(NasbenchError, match=f"the {space_name} space's language models cannot be exported yet"):
        onnx_model(source, final_network(source))


@pytest.mark.parametrize("space_name", [name for name in SPACES if SPACES[name].task == "image"])
def test_onnxruntime_computes_what_torch_computes_in_every_space(space_name, smoke):
    space = get_space(space_name, smoke)
    source = ExportSource(space_name, space, space.sample(random.Random(1)), smoke)
    generator = torch.Generator().manual_seed(1)
    network = populated(final_network(source), space.input_size, generator)
    model = onnx_model(source, network)
    images = torch.randn(3, 3, space.input_size, space.input_size, generator=generator)  # exported at batch 1
    with torch.no_grad():
        expected = network(images)
    got = onnx_logits(model, images)
    assert got.shape == expected.shape == (3, 10)
    assert expected.std() > 1e-2  # logits worth comparing, not all zero
    assert (got - expected).abs().max().item() <= PARITY


def test_the_network_is_the_runners_final_one_without_the_auxiliary_head(smoke, cell_space):
    """The smoke protocol's final stage trains with an auxiliary head: the export leaves it out
    and keeps everything else, in eval mode."""
    assert smoke.final.auxiliary_weight > 0
    arch = cell_space.zoo()["DARTS_V2"].arch
    trained = build_model(cell_space, arch, smoke.final, torch.device("cpu"), 0)
    network = final_network(ExportSource("DARTS_V2", cell_space, arch, smoke))
    assert not network.training
    kept = {k for k in trained.state_dict() if not k.startswith(AUXILIARY_PREFIX)}
    assert set(network.state_dict()) == kept and len(kept) < len(trained.state_dict())
    assert count_params(network) == count_params(trained)


def test_stored_weights_are_loaded_and_must_fit(smoke, cell_space):
    arch = cell_space.zoo()["DARTS_V2"].arch
    weights = {k: torch.full_like(v, 0.01) if v.is_floating_point() else v
               for k, v in final_network(ExportSource("x", cell_space, arch, smoke)).state_dict().items()}
    loaded = final_network(ExportSource("run 3", cell_space, arch, smoke, 3, weights))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in weights.items())
    other = cell_space.zoo()["AmoebaNet"].arch
    with pytest.raises(NasbenchError, match="the stored weights of run 3 do not fit its network"):
        final_network(ExportSource("run 3", cell_space, other, smoke, 3, weights))


def test_the_model_says_where_it_comes_from(smoke, cell_space):
    source = ExportSource("DARTS_V2", cell_space, cell_space.zoo()["DARTS_V2"].arch, smoke)
    props = {p.key: p.value for p in onnx.load_from_string(onnx_model(source, final_network(source))).metadata_props}
    assert props == {
        "nasbench.run_id": "none", "nasbench.space": "cell", "nasbench.protocol": "smoke",
        "nasbench.protocol_hash": smoke.hash, "nasbench.weights": "untrained",
        "nasbench.genotype": json.dumps(source.space.to_dict(source.arch), sort_keys=True),
        "nasbench.input": props["nasbench.input"]}
    assert "(N, 3, 32, 32)" in props["nasbench.input"]
    trained = ExportSource("run 5", source.space, source.arch, smoke, 5,
                           final_network(source).state_dict())
    props = {p.key: p.value for p in onnx.load_from_string(onnx_model(trained, final_network(trained))).metadata_props}
    assert (props["nasbench.run_id"], props["nasbench.weights"]) == ("5", "trained")


def test_untrained_weights_are_the_same_every_time(smoke, cell_space):
    source = ExportSource("DARTS_V2", cell_space, cell_space.zoo()["DARTS_V2"].arch, smoke)
    first, second = final_network(source).state_dict(), final_network(source).state_dict()
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)


def test_an_export_that_computes_something_else_is_refused(smoke, cell_space):
    """The check every export runs before writing: the model against another network fails."""
    source = ExportSource("a", cell_space, cell_space.sample(random.Random(0)), smoke)
    network = final_network(source)
    model = onnx_model(source, network)
    assert parity(model, network, 32) <= 1e-4
    other = final_network(ExportSource("b", cell_space, cell_space.sample(random.Random(0)), smoke))
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.01)
    with pytest.raises(NasbenchError, match="computes logits up to .* away from torch's"):
        parity(model, other.eval(), 32)
