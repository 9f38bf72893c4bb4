"""Penn Treebank: the vocabulary and token counts of the real splits, the stand-in mode and
its identity, the official column layout and windows, and the one-line errors."""
from __future__ import annotations

import io
import shutil
import urllib.request

import pytest
import torch

from nasbench import corpus as corpus_module
from nasbench.corpus import EOS, STAND_IN_TRAIN_SHARE, batchify, load_corpus, window
from nasbench.errors import DataError

VALID_WORDS, VALID_LINES = 70390, 3370
TEST_WORDS, TEST_LINES = 78669, 3761
"""The shared data README's counts of the official splits."""


@pytest.fixture(scope="module")
def stand_in(ptb_path):
    return load_corpus(str(ptb_path), stand_in=True)


def test_the_real_splits_have_their_words_and_an_eos_per_line(stand_in):
    assert stand_in.train.numel() + stand_in.valid.numel() == VALID_WORDS + VALID_LINES
    assert stand_in.test.numel() == TEST_WORDS + TEST_LINES
    eos = stand_in.words.index(EOS)
    assert int((stand_in.test == eos).sum()) == TEST_LINES
    assert int((torch.cat([stand_in.train, stand_in.valid]) == eos).sum()) == VALID_LINES
    assert stand_in.vocab_size == 7596  # 7,595 distinct words in the two files, and <eos>
    assert len(set(stand_in.words)) == stand_in.vocab_size and int(stand_in.test.max()) < stand_in.vocab_size


def test_the_stand_in_trains_on_the_first_lines_of_the_validation_text(stand_in, ptb_path):
    lines = (ptb_path / "ptb.valid.txt").read_text().splitlines()
    cut = int(len(lines) * STAND_IN_TRAIN_SHARE)
    first = [stand_in.words[i] for i in stand_in.train[:len(lines[0].split()) + 1]]
    assert first == [*lines[0].split(), EOS]
    assert stand_in.train.numel() == sum(len(line.split()) + 1 for line in lines[:cut])
    assert [stand_in.words[i] for i in stand_in.valid[-3:]] == [*lines[-1].split()[-2:], EOS]
    assert stand_in.stand_in


def test_identity_is_stable_and_says_stand_in(stand_in, ptb_path, tmp_path):
    assert load_corpus(str(ptb_path), stand_in=True).identity == stand_in.identity
    assert stand_in.identity.startswith("ptb-stand-in-") and len(stand_in.identity) == len("ptb-stand-in-") + 12
    full = tmp_path / "full"
    full.mkdir()
    for name in ("ptb.valid.txt", "ptb.test.txt"):
        shutil.copy(ptb_path / name, full / name)
    (full / "ptb.train.txt").write_text((ptb_path / "ptb.valid.txt").read_text())
    real = load_corpus(str(full))
    assert not real.stand_in and real.identity.startswith("ptb-") and "stand-in" not in real.identity
    (full / "ptb.test.txt").write_text("a changed test split\n")
    assert load_corpus(str(full)).identity != real.identity


def test_batchify_lays_consecutive_text_down_the_columns():
    tokens = torch.arange(11)
    assert batchify(tokens, 3).tolist() == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # the last 2 tokens dropped
    inputs, targets = window(batchify(tokens, 3), 1, 5)
    assert inputs.tolist() == [[1, 4, 7]] and targets.tolist() == [[2, 5, 8]]  # cut at the end
    with pytest.raises(DataError, match="too few"):
        batchify(torch.arange(3), 2)


def test_a_folder_without_the_training_split_needs_the_stand_in_mode(ptb_path, tmp_path):
    with pytest.raises(DataError) as info:
        load_corpus(str(ptb_path))
    message = str(info.value)
    assert "missing ptb.train.txt" in message and "stand-in mode" in message and "\n" not in message
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(str(tmp_path / "nowhere"))
    (tmp_path / "ptb.train.txt").write_text("x\n")
    with pytest.raises(DataError, match="holds the training split"):
        load_corpus(str(tmp_path), stand_in=True)


def test_offline_without_the_corpus_is_one_line_saying_how_to_get_it(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.delenv(corpus_module.CORPUS_ENV_VAR, raising=False)
    with pytest.raises(DataError) as info:
        load_corpus(None, data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "ptb") in message
    assert corpus_module.SOURCE_URL in message and "--data PATH" in message
    assert not list((tmp_path / "ptb").iterdir())  # nothing half-written


def test_a_missing_corpus_is_downloaded_into_the_data_cache_once(ptb_path, tmp_path, monkeypatch):
    served = []

    def serve(url, timeout):
        served.append(url)
        name = url.rsplit("/", 1)[1]
        return io.BytesIO((ptb_path / ("ptb.valid.txt" if name == "ptb.train.txt" else name)).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    loaded = load_corpus("ptb", data_dir=tmp_path)
    assert served == [corpus_module.SOURCE_URL + name for name in corpus_module.FILES] and not loaded.stand_in
    assert load_corpus("ptb", data_dir=tmp_path).identity == loaded.identity and len(served) == 3
