"""Image data sets: CIFAR-10 or an .npz file, checked, and deterministic stratified splits.

numpy only (torchvision is imported only to download CIFAR-10): a missing or malformed
data file, or a protocol that needs more images than it has, is refused before torch
loads. :mod:`nasbench.data` puts the splits on the training device.
"""
from __future__ import annotations

import hashlib
import os
import socket
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbench.errors import DataError
from nasbench.protocol import DataConfig

ENV_VAR = "NASBENCH_DATA"
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
# CIFAR-10 training-set channel statistics (as used by DARTS and most NAS code), fixed so
# that every data source is normalised the same way.
CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
"""What numpy raises on a truncated, empty or corrupt archive."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 NHWC arrays with integer labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    identity: str
    """Short, stable name of the data (stored with every result)."""


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nasbench" / "data"


def resolve_data_spec(spec: str | None) -> str:
    return spec or os.environ.get(ENV_VAR) or "cifar10"


def load_dataset(spec: str | None = None, data_dir: Path | None = None) -> Dataset:
    """``cifar10`` (torchvision; downloaded into ``data_dir`` when missing) or a ``.npz``
    file with arrays x_train, y_train, x_test, y_test. ``None`` reads $NASBENCH_DATA."""
    spec = resolve_data_spec(spec)
    if spec == "cifar10":
        return _load_torchvision_cifar10(Path(data_dir) if data_dir else default_data_dir())
    if spec.endswith(".npz"):
        return _load_npz(Path(spec))
    raise DataError(f"--data must be 'cifar10' or a path to an .npz file, got {spec!r}")


def _load_torchvision_cifar10(root: Path) -> Dataset:
    from torchvision.datasets import CIFAR10

    root.mkdir(parents=True, exist_ok=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an offline machine should fail in seconds, not hang
    try:
        train = CIFAR10(str(root), train=True, download=True)
        test = CIFAR10(str(root), train=False, download=True)
    except (OSError, RuntimeError) as err:
        raise DataError(
            f"CIFAR-10 is not in {root} and could not be downloaded ({type(err).__name__}: {err}); "
            f"on a machine with internet run `python -c \"from torchvision.datasets import CIFAR10; "
            f"CIFAR10('{root}', download=True)\"` and copy {root} here, "
            f"or pass --data PATH.npz (or set {ENV_VAR})"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return _checked(np.asarray(train.data), np.asarray(train.targets), np.asarray(test.data),
                    np.asarray(test.targets), "cifar10", str(root))


def _load_npz(path: Path) -> Dataset:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"data file {path} {what} (--data or ${ENV_VAR})")
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        archive = np.load(path, allow_pickle=False)
    except UNREADABLE as err:
        raise DataError(f"{path}: not a readable .npz file ({type(err).__name__}: {err or 'empty'})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an .npz archive (numpy.savez writes one, with arrays {', '.join(NPZ_ARRAYS)})")
    try:
        with archive:
            missing = [name for name in NPZ_ARRAYS if name not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {', '.join(missing)} "
                                f"(an .npz needs {', '.join(NPZ_ARRAYS)}; it has {', '.join(archive.files) or 'none'})")
            arrays = [archive[name] for name in NPZ_ARRAYS]
    except UNREADABLE as err:
        raise DataError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    return _checked(*arrays, identity=f"npz-{digest[:12]}", where=str(path))


def _checked(x_train, y_train, x_test, y_test, identity: str, where: str) -> Dataset:
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{where}: x_{split} must be uint8 images of shape (N, 32, 32, 3), "
                            f"got {x.dtype} {x.shape}")
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
            raise DataError(f"{where}: y_{split} must be {x.shape[0]} integer labels, got {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
            raise DataError(f"{where}: y_{split} labels must lie in 0..{NUM_CLASSES - 1}")
    return Dataset(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), identity)


# -- splits ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitIndices:
    search_train: np.ndarray
    search_val: np.ndarray
    test: np.ndarray

    @property
    def train(self) -> np.ndarray:
        """All training images of the protocol: search-train and search-validation."""
        return np.sort(np.concatenate([self.search_train, self.search_val]))


def _quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` across classes in proportion to ``counts`` (largest remainder)."""
    exact = counts * total / counts.sum()
    quotas = np.floor(exact).astype(np.int64)
    shortfall = total - quotas.sum()
    quotas[np.argsort(-(exact - quotas), kind="stable")[:shortfall]] += 1
    return quotas


def _stratified(labels: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint, class-stratified index sets of exactly the given sizes.

    Each part's size is shared out over the classes in proportion to the images each
    class still has, so every part is stratified and its total is exact."""
    classes = np.unique(labels)
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    remaining = np.array([len(idx) for idx in by_class])
    taken = np.zeros_like(remaining)
    parts = []
    for size in sizes:
        quotas = _quotas(remaining, size)
        parts.append(np.sort(np.concatenate([idx[start:start + q] for idx, start, q in zip(by_class, taken, quotas)])))
        taken += quotas
        remaining -= quotas
    return parts


def check_fits(dataset: Dataset, config: DataConfig) -> None:
    """Refuse a protocol that needs more training or test images than ``dataset`` has."""
    n_train, n_test = len(dataset.y_train), len(dataset.y_test)
    if config.train_images > n_train or config.test_images > n_test:
        raise DataError(
            f"the protocol needs {config.train_images} training and {config.test_images} test images, "
            f"but data {dataset.identity} has {n_train} and {n_test}; use a smaller protocol or the full CIFAR-10"
        )


def make_splits(dataset: Dataset, config: DataConfig) -> SplitIndices:
    """Deterministic stratified split: the protocol's training images divided into
    search-train and search-validation, and a test subset used only for test error."""
    check_fits(dataset, config)
    rng = np.random.default_rng(config.split_seed)
    search_train, search_val = _stratified(
        dataset.y_train, (config.search_train_images, config.search_val_images), rng)
    (test,) = _stratified(dataset.y_test, (config.test_images,), rng)
    return SplitIndices(search_train, search_val, test)
