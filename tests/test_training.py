"""Training: the learning-rate schedule, real learning, divergence, repeatability."""
from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch
from helpers import CPU

from nasbench.data import DeviceSplit
from nasbench.training import (
    TrainingDiverged,
    build_model,
    cosine_lr,
    evaluate,
    train_network,
)


def test_cosine_lr(smoke):
    stage = dataclasses.replace(smoke.final, lr=0.1, lr_min=0.002, epochs=10)
    assert cosine_lr(stage, 0) == pytest.approx(0.1)
    assert cosine_lr(stage, 5) == pytest.approx((0.1 + 0.002) / 2)
    assert cosine_lr(stage, 10) == pytest.approx(0.002)
    assert cosine_lr(stage, 2) == pytest.approx(0.002 + 0.049 * (1 + math.cos(math.pi * 0.2)))
    rates = [cosine_lr(stage, e) for e in range(11)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_cosine_lr_of_the_full_protocol():
    from nasbench.protocol import load_protocol

    final = load_protocol("full").final
    assert cosine_lr(final, 0) == pytest.approx(0.025)
    assert cosine_lr(final, 300) == pytest.approx(0.0125)
    assert cosine_lr(final, 600) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def split64(dataset):
    return DeviceSplit.from_arrays(dataset.x_train[:64], dataset.y_train[:64], CPU)


@pytest.fixture(scope="module")
def learner_stage(smoke):
    return dataclasses.replace(smoke.final, channels=8, cells=2, epochs=20, batch_size=16, lr=0.05, cutout=0,
                               drop_path=0.0, auxiliary_weight=0.0, weight_decay=0.0)


def test_a_small_network_learns(cell_space, split64, learner_stage, dataset):
    genotype = cell_space.zoo()["GDAS_FRC"].arch
    majority = torch.bincount(split64.labels).max().item() / 64
    assert majority == 12 / 64
    untrained = evaluate(build_model(cell_space, genotype, learner_stage, CPU, 0), split64)
    result = train_network(build_model(cell_space, genotype, learner_stage, CPU, 0), learner_stage, split64, split64,
                           seed=0, show_progress=False)
    assert result.accuracy >= 0.4, result  # chance is 0.1, the majority class 0.19
    assert result.accuracy >= untrained + 0.2
    assert result.train_loss < math.log(10) - 0.5
    assert (result.accuracy * 64) == int(result.accuracy * 64)
    assert result.seconds > 0


def test_huge_learning_rate_diverges(cell_space, split64, smoke):
    stage = dataclasses.replace(smoke.final, lr=1e9, grad_clip=0.0, epochs=3, auxiliary_weight=0.0)
    model = build_model(cell_space, cell_space.zoo()["DARTS_V2"].arch, stage, CPU, 0)
    with pytest.raises(TrainingDiverged, match=r"training loss became (nan|inf)"):
        train_network(model, stage, split64, split64, seed=0, show_progress=False)


def test_same_seed_same_result(cell_space, split64, smoke):
    stage = dataclasses.replace(smoke.final, epochs=2, batch_size=16)  # cutout, drop path and aux head all on
    genotype = cell_space.zoo()["DARTS_V2"].arch

    def train(seed):
        model = build_model(cell_space, genotype, stage, CPU, seed)
        result = train_network(model, stage, split64, split64, seed=seed, show_progress=False)
        return result, [p.detach().clone() for p in model.parameters()]

    (first, weights_a), (second, weights_b), (other, weights_c) = train(3), train(3), train(4)
    assert first.accuracy == second.accuracy and first.train_loss == second.train_loss
    assert all(torch.equal(a, b) for a, b in zip(weights_a, weights_b))
    assert other.train_loss != first.train_loss
    assert not all(torch.equal(a, c) for a, c in zip(weights_a, weights_c))


def test_build_model_draws_weights_from_the_seed(cell_space, smoke):
    genotype = cell_space.zoo()["PDARTS"].arch
    a = build_model(cell_space, genotype, smoke.final, CPU, 1)
    b = build_model(cell_space, genotype, smoke.final, CPU, 1)
    c = build_model(cell_space, genotype, smoke.final, CPU, 2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))
    assert a.auxiliary_head is not None  # smoke's final stage has auxiliary_weight 0.4


def test_evaluate_counts_correct_predictions(cell_space, split64, smoke):
    model = build_model(cell_space, cell_space.zoo()["DARTS_V2"].arch, smoke.final, CPU, 0)
    model.eval()
    from nasbench.data import Augmentation

    with torch.no_grad():
        predictions = model(Augmentation(CPU).normalise(split64.images)).argmax(1)
    expected = (predictions == split64.labels).sum().item() / 64
    assert evaluate(model, split64) == expected


def test_a_last_batch_of_one_image_trains(cell_space, dataset, smoke):
    """65 training images in batches of 64 leave a last batch of one image; with the auxiliary
    head on (smoke's final stage), its batch norm sees a 1x1 map of that single image."""
    split = DeviceSplit.from_arrays(dataset.x_train[:65], dataset.y_train[:65], CPU)
    stage = smoke.final
    assert stage.batch_size == 64 and stage.auxiliary_weight > 0
    model = build_model(cell_space, cell_space.zoo()["DARTS_V2"].arch, stage, CPU, 0)
    result = train_network(model, stage, split, split, seed=0, show_progress=False)
    assert 0 <= result.accuracy <= 1 and math.isfinite(result.train_loss)


def test_auxiliary_loss_is_added_with_its_weight(cell_space, dataset, smoke):
    """One epoch of one batch: the reported loss is that of the first step, before any update,
    so it is CE(logits) + weight * CE(aux logits) with the same logits whatever the weight."""
    split = DeviceSplit.from_arrays(dataset.x_train[:32], dataset.y_train[:32], CPU)
    stage = dataclasses.replace(smoke.final, epochs=1, batch_size=32)
    genotype = cell_space.zoo()["DARTS_V2"].arch

    def loss(weight):
        model = build_model(cell_space, genotype, stage, CPU, 0)  # with the auxiliary head
        assert model.auxiliary_head is not None
        return train_network(model, dataclasses.replace(stage, auxiliary_weight=weight), split, split, seed=0,
                             show_progress=False).train_loss

    without, light, heavy = loss(0.0), loss(0.4), loss(0.8)
    aux_ce = (light - without) / 0.4
    assert 1.5 < aux_ce < 3.5  # an untrained 10-class head: about ln(10)
    assert heavy - without == pytest.approx(0.8 * aux_ce, rel=1e-4)


class Stopped(Exception):
    """Stands for a kill right after a checkpoint."""


class MemoryCheckpoint:
    """An :class:`EpochCheckpoint` in memory, serialised as the store does; it stops the
    training once it has saved ``stop_after`` epochs."""

    def __init__(self, stop_after: int | None = None):
        self.data: bytes | None = None
        self.stop_after, self.saved = stop_after, []

    def load(self):
        return None if self.data is None else torch.load(io.BytesIO(self.data), weights_only=True)

    def save(self, state):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.data = buffer.getvalue()
        self.saved.append(state["epochs"])
        if state["epochs"] == self.stop_after:
            raise Stopped


@pytest.mark.parametrize("stop_after", [1, 2])
def test_a_training_stopped_after_any_epoch_resumes_to_the_same_network(cell_space, split64, smoke, stop_after):
    stage = dataclasses.replace(smoke.final, epochs=3, batch_size=16)  # cutout, drop path and aux head all on
    assert stage.cutout > 0 and stage.drop_path > 0 and stage.auxiliary_weight > 0
    genotype = cell_space.zoo()["DARTS_V2"].arch

    def train(checkpoint):
        model = build_model(cell_space, genotype, stage, CPU, 5)
        result = train_network(model, stage, split64, split64, seed=5, show_progress=False, checkpoint=checkpoint)
        return result, model.state_dict()

    plain, weights = train(None)
    checkpoint = MemoryCheckpoint(stop_after)
    with pytest.raises(Stopped):
        train(checkpoint)
    torch.manual_seed(123)  # another process: the global generator in another state
    checkpoint.stop_after = None
    resumed, resumed_weights = train(checkpoint)
    assert checkpoint.saved == [*range(1, stop_after + 1), *range(stop_after + 1, 4)]  # no epoch done twice
    assert resumed.resumed_epoch == stop_after and resumed.earlier_seconds > 0
    assert (resumed.accuracy, resumed.train_loss) == (plain.accuracy, plain.train_loss)
    assert weights.keys() == resumed_weights.keys()
    assert all(torch.equal(weights[name], resumed_weights[name]) for name in weights)


def test_a_training_stopped_after_its_last_epoch_only_evaluates(cell_space, split64, smoke):
    stage = dataclasses.replace(smoke.final, epochs=1, batch_size=32)
    genotype = cell_space.zoo()["DARTS_V2"].arch
    checkpoint = MemoryCheckpoint(stop_after=1)
    with pytest.raises(Stopped):
        train_network(build_model(cell_space, genotype, stage, CPU, 0), stage, split64, split64, seed=0,
                      show_progress=False, checkpoint=checkpoint)
    again = train_network(build_model(cell_space, genotype, stage, CPU, 0), stage, split64, split64, seed=0,
                          show_progress=False, checkpoint=checkpoint)
    assert checkpoint.saved == [1] and again.resumed_epoch == 1 and math.isfinite(again.train_loss)


# -- precision and compiled training ---------------------------------------------------------

@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_mixed_precision_training_resumes_exactly_with_its_loss_scale(cell_space, split64, smoke, precision):
    """bf16 and fp16 train (differently from fp32), and a training stopped after its first
    epoch resumes to the same network; fp16's gradient scaler is in the checkpoint (its
    first step overflowed at 2^16, halving the scale) and is put back (a changed scale and
    step count resume from where they were), bf16 has none to keep."""
    stage = dataclasses.replace(smoke.final, epochs=2, batch_size=16)
    genotype = cell_space.zoo()["DARTS_V2"].arch

    def train(checkpoint, precision=precision):
        model = build_model(cell_space, genotype, stage, CPU, 5)
        result = train_network(model, stage, split64, split64, seed=5, show_progress=False, checkpoint=checkpoint,
                               precision=precision)
        return result, model.state_dict()

    plain, weights = train(None)
    assert plain.train_loss != train(None, "fp32")[0].train_loss
    checkpoint = MemoryCheckpoint(stop_after=1)
    with pytest.raises(Stopped):
        train(checkpoint)
    scaler = checkpoint.load()["scaler"]
    if precision == "bf16":
        assert scaler == {}
    else:
        assert scaler["scale"] == 2.0 ** 15 and scaler["_growth_tracker"] == 3  # 4 steps, the first overflowed
    checkpoint.stop_after = None
    resumed, resumed_weights = train(checkpoint)
    assert (resumed.accuracy, resumed.train_loss) == (plain.accuracy, plain.train_loss)
    assert all(torch.equal(weights[name], resumed_weights[name]) for name in weights)
    if precision == "fp16":
        state = checkpoint.load()
        state["scaler"] |= {"scale": 1024.0, "_growth_tracker": 100}
        state["epochs"] = 1
        restarted = MemoryCheckpoint()
        restarted.save(state)
        train(restarted)
        assert restarted.load()["scaler"]["scale"] == 1024.0 and restarted.load()["scaler"]["_growth_tracker"] == 104


def test_a_compiled_training_compiles_the_same_graphs_for_one_epoch_or_three(cell_space, split64, smoke,
                                                                             counting_backend):
    """Drop path's probability changes every epoch (0, then 0.033, 0.067 of 0.1): held in a
    tensor it recompiles nothing; the last, smaller batch (64 = 24 + 24 + 16) compiles once."""
    stage = dataclasses.replace(smoke.final, batch_size=24)
    assert stage.drop_path > 0 and stage.auxiliary_weight > 0
    genotype = cell_space.zoo()["DARTS_V2"].arch
    counts = []
    for epochs in (1, 3):
        counting_backend.graphs = 0
        model = build_model(cell_space, genotype, stage, CPU, 0)
        result = train_network(model, dataclasses.replace(stage, epochs=epochs), split64, split64, seed=0,
                               show_progress=False, precision="bf16", compile=counting_backend)
        assert math.isfinite(result.train_loss)
        counts.append(counting_backend.graphs)
    assert counts[0] == counts[1] == 2
