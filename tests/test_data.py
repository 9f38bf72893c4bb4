"""Data: loading, validation, stratified splits, and batched augmentation."""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from helpers import CPU

from nasbench.data import (
    Augmentation,
    DeviceSplit,
    SplitData,
    endless_batches,
    ordered_batches,
    shuffled_batches,
)
from nasbench.errors import DataError
from nasbench.images import load_dataset, make_splits
from nasbench.protocol import load_protocol

# DARTS' CIFAR-10 normalisation constants
MEAN = np.array([0.49139968, 0.48215827, 0.44653124], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.24703233, 0.24348505, 0.26158768], dtype=np.float32).reshape(1, 3, 1, 1)


def normalise(images: np.ndarray) -> np.ndarray:
    """NCHW uint8 -> normalised float, by hand."""
    return (images.astype(np.float32) / 255.0 - MEAN) / STD


# -- loading ---------------------------------------------------------------------------

def test_subset_loads(dataset, data_path):
    assert dataset.x_train.shape == (5170, 32, 32, 3) and dataset.x_train.dtype == np.uint8
    assert dataset.y_train.shape == (5170,) and dataset.y_train.dtype == np.int64
    assert dataset.x_test.shape == (1017, 32, 32, 3) and dataset.y_test.shape == (1017,)
    digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
    assert dataset.identity == f"npz-{digest[:12]}"
    with np.load(data_path) as raw:
        assert np.array_equal(raw["x_train"], dataset.x_train) and np.array_equal(raw["y_test"], dataset.y_test)


def test_identity_depends_on_content_not_path(tmp_path, dataset):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    arrays = dict(x_train=dataset.x_train[:20], y_train=dataset.y_train[:20], x_test=dataset.x_test[:10],
                  y_test=dataset.y_test[:10])
    np.savez(a, **arrays)
    np.savez(b, **arrays)
    assert load_dataset(str(a)).identity == load_dataset(str(b)).identity
    np.savez(b, **{**arrays, "y_test": (arrays["y_test"] + 1) % 10})
    assert load_dataset(str(a)).identity != load_dataset(str(b)).identity


def test_nasbench_data_environment_variable(monkeypatch, data_path, dataset):
    monkeypatch.setenv("NASBENCH_DATA", str(data_path))
    assert load_dataset().identity == dataset.identity
    assert load_dataset(None, None).identity == dataset.identity


def _arrays(n_train=12, n_test=6):
    rng = np.random.default_rng(0)
    return dict(x_train=rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
                y_train=np.arange(n_train) % 10,
                x_test=rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
                y_test=np.arange(n_test) % 10)


@pytest.mark.parametrize("change, words", [
    pytest.param(lambda a: a.pop("y_test"), ["missing arrays y_test"], id="missing-array"),
    pytest.param(lambda a: a.update(images=a.pop("x_train")), ["missing arrays x_train", "images"], id="renamed"),
    pytest.param(lambda a: a.update(x_train=a["x_train"].astype(np.float32)), ["x_train", "uint8", "float32"],
                 id="wrong-dtype"),
    pytest.param(lambda a: a.update(x_test=a["x_test"].transpose(0, 3, 1, 2)), ["x_test", "(N, 32, 32, 3)"],
                 id="wrong-shape"),
    pytest.param(lambda a: a.update(x_train=a["x_train"][..., 0]), ["x_train"], id="three-dims"),
    pytest.param(lambda a: a.update(y_train=a["y_train"].astype(np.float64)), ["y_train", "integer"],
                 id="float-labels"),
    pytest.param(lambda a: a.update(y_train=a["y_train"][:-1]), ["y_train", "12 integer labels"],
                 id="label-count"),
    pytest.param(lambda a: a.update(y_test=a["y_test"] + 5), ["y_test", "0..9"], id="label-too-big"),
    pytest.param(lambda a: a.update(y_train=a["y_train"] - 1), ["y_train", "0..9"], id="negative-label"),
])
def test_malformed_npz(tmp_path, change, words):
    arrays = _arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as info:
        load_dataset(str(path))
    for word in words:
        assert word in str(info.value)


def test_valid_small_npz_loads(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez(path, **_arrays())
    data = load_dataset(str(path))
    assert data.x_train.shape == (12, 32, 32, 3) and list(data.y_train) == list(np.arange(12) % 10)


def test_not_an_npz(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("not numpy")
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_dataset(str(text))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npz"))
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    with pytest.raises(DataError):
        load_dataset(str(folder))
    with pytest.raises(DataError, match="--data must be 'cifar10' or a path to an .npz file"):
        load_dataset(str(tmp_path / "data.csv"))


def test_npy_file_named_npz(tmp_path):
    """A single array saved with np.save (an .npy) under an .npz name is malformed input, not a crash."""
    path = tmp_path / "single.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((2, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="single.npz"):
        load_dataset(str(path))


def test_offline_cifar10_explains_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv("NASBENCH_DATA", raising=False)
    timeout = socket.getdefaulttimeout()
    with pytest.raises(DataError) as info:
        load_dataset(None, tmp_path / "cifar")
    message = str(info.value)
    assert "--data" in message and "NASBENCH_DATA" in message
    assert str(tmp_path / "cifar") in message
    assert "Temporary failure in name resolution" in message
    assert socket.getdefaulttimeout() == timeout  # the 30 s download timeout is not left behind


# -- splits ----------------------------------------------------------------------------

def _config(smoke, train, val, test, seed=0):
    return dataclasses.replace(smoke.data, train_images=train, search_val_images=val, test_images=test,
                               split_seed=seed)


SIZES = [(320, 160, 200), (64, 32, 40), (1000, 300, 500), (101, 37, 13), (5170, 2585, 1017)]


@pytest.mark.parametrize("train, val, test", SIZES)
def test_split_sizes_and_disjointness(dataset, smoke, train, val, test):
    splits = make_splits(dataset, _config(smoke, train, val, test))
    assert len(np.intersect1d(splits.search_train, splits.search_val)) == 0
    assert len(set(splits.search_train)) == len(splits.search_train)
    assert np.array_equal(splits.train, np.union1d(splits.search_train, splits.search_val))
    assert splits.train.max() < 5170 and splits.test.max() < 1017 and splits.train.min() >= 0
    assert len(splits.train) == train
    assert len(splits.test) == test
    assert (len(splits.search_train), len(splits.search_val)) == (train - val, val)


@pytest.mark.parametrize("train, val, test", SIZES)
def test_splits_are_stratified(dataset, smoke, train, val, test):
    splits = make_splits(dataset, _config(smoke, train, val, test))
    for labels, idx, size in ((dataset.y_train, splits.search_train, train - val),
                              (dataset.y_train, splits.search_val, val),
                              (dataset.y_test, splits.test, test)):
        share = np.bincount(labels, minlength=10) / len(labels)
        counts = np.bincount(labels[idx], minlength=10)
        assert np.all(np.abs(counts - share * size) <= 1), (counts, share * size)


def test_splits_are_deterministic_and_depend_on_the_seed(dataset, smoke):
    a = make_splits(dataset, _config(smoke, 320, 160, 200))
    b = make_splits(dataset, _config(smoke, 320, 160, 200))
    c = make_splits(dataset, _config(smoke, 320, 160, 200, seed=1))
    for name in ("search_train", "search_val", "test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.search_val, c.search_val)


def test_protocol_larger_than_data(dataset):
    with pytest.raises(DataError) as info:
        make_splits(dataset, load_protocol("full").data)
    assert "50000" in str(info.value) and "5170" in str(info.value)


def test_split_data_on_device(dataset, smoke):
    splits = make_splits(dataset, _config(smoke, 64, 32, 40))
    data = SplitData.build(dataset, splits, CPU)
    n_val = len(splits.search_val)  # the sizes themselves are checked above
    assert data.search_val.images.shape == (n_val, 3, 32, 32) and data.search_val.images.dtype == torch.uint8
    assert np.array_equal(data.search_val.images.numpy(), dataset.x_train[splits.search_val].transpose(0, 3, 1, 2))
    assert np.array_equal(data.test.labels.numpy(), dataset.y_test[splits.test])
    assert len(data.train) == len(data.search_train) + len(data.search_val)


def test_batches_cover_the_split_once(dataset):
    split = DeviceSplit.from_arrays(dataset.x_train[:50], dataset.y_train[:50], CPU)
    gen = torch.Generator().manual_seed(0)
    batches = list(shuffled_batches(split, 16, gen))
    assert [len(labels) for _, labels in batches] == [16, 16, 16, 2]
    seen = torch.cat([images for images, _ in batches])
    # every image of the split is in exactly one batch, in a shuffled order
    assert sorted(seen.flatten(1).tolist()) == sorted(split.images.flatten(1).tolist())
    assert not torch.equal(seen, split.images)
    ordered = list(ordered_batches(split, 20))
    assert torch.equal(torch.cat([labels for _, labels in ordered]), split.labels)


def test_endless_batches_reshuffle_pass_after_pass(dataset):
    split = DeviceSplit.from_arrays(dataset.x_train[:20], dataset.y_train[:20], CPU)
    batches = list(itertools.islice(endless_batches(split, 8, torch.Generator().manual_seed(0)), 6))
    assert [len(labels) for _, labels in batches] == [8, 8, 4] * 2
    first, second = (torch.cat([images for images, _ in batches[i:i + 3]]) for i in (0, 3))
    assert sorted(first.flatten(1).tolist()) == sorted(second.flatten(1).tolist()) == \
        sorted(split.images.flatten(1).tolist())
    assert not torch.equal(first, second)  # each pass in a fresh order


# -- augmentation ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def noise_images():
    """Random images with no zero pixel, so zero padding and cutout are recognisable."""
    rng = np.random.default_rng(1)
    return rng.integers(1, 256, (48, 3, 32, 32), dtype=np.uint8)


def test_no_augmentation_is_normalisation(noise_images):
    augment = Augmentation(CPU, crop_padding=0, flip=False, cutout=0)
    out = augment(torch.from_numpy(noise_images), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(out.numpy(), normalise(noise_images), rtol=0, atol=1e-5)
    np.testing.assert_allclose(augment.normalise(torch.from_numpy(noise_images)).numpy(), normalise(noise_images),
                               rtol=0, atol=1e-5)


def test_crop_is_a_window_of_the_zero_padded_image(noise_images):
    augment = Augmentation(CPU, crop_padding=4, flip=False, cutout=0)
    out = augment(torch.from_numpy(noise_images), torch.Generator().manual_seed(3)).numpy()
    padded = np.pad(noise_images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    offsets = []
    for i in range(len(noise_images)):
        matches = [(dy, dx) for dy, dx in itertools.product(range(9), range(9))
                   if np.allclose(out[i], normalise(padded[i:i + 1, :, dy:dy + 32, dx:dx + 32])[0], atol=1e-5)]
        assert len(matches) == 1, f"sample {i}: crop matches {matches}"
        offsets.append(matches[0])
    assert len(set(offsets)) >= 20  # offsets are drawn per sample
    assert len({dy for dy, _ in offsets}) >= 7 and len({dx for _, dx in offsets}) >= 7


def test_flip(noise_images):
    augment = Augmentation(CPU, crop_padding=0, flip=True, cutout=0)
    out = augment(torch.from_numpy(noise_images), torch.Generator().manual_seed(0)).numpy()
    plain, mirrored = normalise(noise_images), normalise(noise_images[..., ::-1])
    flipped = []
    for i in range(len(noise_images)):
        same, flip = np.allclose(out[i], plain[i], atol=1e-5), np.allclose(out[i], mirrored[i], atol=1e-5)
        assert same != flip
        flipped.append(flip)
    assert 10 <= sum(flipped) <= 38  # about half of 48


@pytest.mark.parametrize("length", [16, 8, 7])
def test_cutout_zeroes_one_square_and_nothing_else(noise_images, length):
    augment = Augmentation(CPU, crop_padding=0, flip=False, cutout=length)
    out = augment(torch.from_numpy(noise_images), torch.Generator().manual_seed(5)).numpy()
    reference = normalise(noise_images)
    assert np.all(reference != 0)
    full_squares = 0
    for i in range(len(noise_images)):
        hole = out[i] == 0
        assert np.array_equal(hole[0], hole[1]) and np.array_equal(hole[0], hole[2]), "same hole in every channel"
        np.testing.assert_allclose(out[i][~hole], reference[i][~hole], rtol=0, atol=1e-5)
        ys, xs = np.nonzero(hole[0])
        if len(ys) == 0:
            continue
        height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert height <= length and width <= length
        assert hole[0].sum() == height * width, "the hole is one rectangle"
        full_squares += height == width == 2 * (length // 2)
    assert full_squares >= 10  # most holes lie fully inside the image


def test_same_seed_same_augmentation(noise_images):
    augment = Augmentation(CPU, crop_padding=4, flip=True, cutout=16)
    images = torch.from_numpy(noise_images)
    a = augment(images, torch.Generator().manual_seed(9))
    b = augment(images, torch.Generator().manual_seed(9))
    c = augment(images, torch.Generator().manual_seed(10))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.dtype == torch.float32 and a.shape == (48, 3, 32, 32)
