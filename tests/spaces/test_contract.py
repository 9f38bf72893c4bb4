"""The contract every search space keeps, parametrised over the registry
(``nasbench.spaces.SPACES``, each laid out as the smoke protocol lays it out): its
architectures are immutable values (hashable, equal values with equal hashes, frozen), they
round-trip through their JSON form (``to_dict`` / ``from_dict`` and ``json.dumps``), they read
as text that tells them apart, sampling depends only on the ``random.Random`` it is given,
and each builds a network for its ``task``: one that classifies images, or a language model. The zoo's published architectures are
values of the space too."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from nasbench.spaces import SPACES, get_space

SAMPLES = 20


@pytest.fixture(scope="module", params=list(SPACES))
def space(request, smoke):
    return get_space(request.param, smoke)


@pytest.fixture(scope="module")
def samples(space):
    rng = random.Random(0)
    return [space.sample(rng) for _ in range(SAMPLES)] + [entry.arch for entry in space.zoo().values()]


def test_architectures_are_hashable_values(space, samples):
    copies = [space.from_dict(json.loads(json.dumps(space.to_dict(arch)))) for arch in samples]
    for arch, copy in zip(samples, copies):
        assert copy == arch and hash(copy) == hash(arch)
    assert set(copies) == set(samples) and len(set(samples)) > 1  # distinct draws stay distinct
    first = {}
    for i, arch in enumerate(samples):
        first.setdefault(arch, i)
    assert [first[copy] for copy in copies] == [samples.index(arch) for arch in samples]  # usable as dict keys


def test_architectures_are_immutable(samples):
    for arch in samples:
        assert dataclasses.is_dataclass(arch)
        first = dataclasses.fields(arch)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(arch, first, getattr(arch, first))


def test_the_json_form_round_trips(space, samples):
    for arch in samples:
        data = space.to_dict(arch)
        text = json.dumps(data)
        assert json.loads(text) == data  # plain JSON: lists, not tuples, in the form
        assert space.to_dict(space.from_dict(json.loads(text))) == data


def test_str_reads_as_text_that_tells_architectures_apart(samples):
    texts = [str(arch) for arch in samples]
    for arch, text in zip(samples, texts):
        assert text.strip() and text != repr(arch)  # not the dataclass repr
    assert len(set(texts)) == len(set(samples))


def test_sampling_depends_only_on_the_rng(space, samples):
    for other in (1, 2):  # the global random states do not matter
        random.seed(other)
        torch.manual_seed(other)
        rng = random.Random(0)
        assert [space.sample(rng) for _ in range(SAMPLES)] == samples[:SAMPLES]


def test_a_network_of_each_architecture_does_its_task(space, samples, smoke):
    """An image network classifies a batch of images into the config's classes; a language
    model gives, for (time, batch) word ids, log-probabilities over the config's words."""
    torch.manual_seed(0)
    config = smoke.candidate.network
    for arch in samples[:3]:
        network = space.build(arch, config).eval()
        with torch.no_grad():
            if space.task == "language-model":
                log_probs = network(torch.randint(config.num_classes, (5, 2)), network.init_state(2))[0]
                assert log_probs.shape == (5, 2, config.num_classes), str(arch)
                assert torch.allclose(log_probs.exp().sum(-1), torch.ones(5, 2)), str(arch)
                continue
            logits = network(torch.randn(2, 3, space.input_size, space.input_size))
        assert space.task == "image" and logits.shape == (2, 10) and torch.isfinite(logits).all(), str(arch)
