"""What a run's task reads from its protocol: how many epochs each of its trainings has,
by the recipe of its space's task (the image stages, or the language-model section)."""
from __future__ import annotations

import pytest

from nasbench.protocol import load_protocol
from nasbench.runner.task import RunSpec, stage_epochs


def spec(space: str, protocol) -> RunSpec:
    return RunSpec(run_id=1, method="random", space=space, describe="random seed 0", protocol=protocol, seed=0,
                   constraint=None, keep_weights=False, show_progress=False, saved=None, elapsed_before=0.0,
                   stage_states={})


@pytest.mark.parametrize("name", ["smoke", "proxy", "full"])
def test_each_training_has_its_tasks_epochs(name):
    protocol = load_protocol(name)
    image = spec("cell", protocol)
    assert stage_epochs(image, "final") == protocol.final.epochs
    assert stage_epochs(image, "candidate 3") == protocol.candidate.epochs
    section = protocol.section("language_model")
    for space in ("enas-rnn", "nasrl-rnn"):
        language = spec(space, protocol)
        assert stage_epochs(language, "final") == section["final_epochs"]
        assert stage_epochs(language, "candidate 0") == section["candidate_epochs"]


def test_the_language_model_epochs_follow_the_section_not_the_image_stages():
    protocol = load_protocol("smoke")
    changed = protocol.with_section("language_model", {**protocol.section("language_model"), "candidate_epochs": 7,
                                                       "final_epochs": 9})
    assert (stage_epochs(spec("enas-rnn", changed), "candidate 1"), stage_epochs(spec("enas-rnn", changed), "final")) \
        == (7, 9)
    assert stage_epochs(spec("cell", changed), "candidate 1") == protocol.candidate.epochs != 7
