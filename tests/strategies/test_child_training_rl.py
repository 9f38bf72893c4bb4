"""The RL methods that train every child from scratch (NAS-RL, NASNet): a smoke run stores each
as RL on its own space, with its child trainings and its controller's updates."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import context, store_rows, with_candidates, with_section

from nasbench.spaces import get_space
from nasbench.strategies.nas_rl import NasRl
from nasbench.strategies.nasnet import Nasnet


@pytest.mark.parametrize("method, space", [("nas-rl", "nasrl-macro"), ("nasnet", "nasnet")])
def test_a_run_is_stored_as_rl_with_its_child_trainings(smoke_store, method, space):
    rows = [row for row in store_rows(smoke_store.path) if row["method"] == method]
    assert len(rows) == 2 and {row["seed"] for row in rows} == {0, 1}
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "RL" and row["space"] == space
        assert row["test_acc"] is not None and row["params"] > 0
        details = json.loads(row["details_json"])
        assert details["child_trainings"] == 2 and len(details["controller_epochs"]) == 2


@pytest.mark.parametrize("cls, space, reward_exponent", [(NasRl, "nasrl-macro", 3), (Nasnet, "nasnet", 1)],
                         ids=["nas-rl", "nasnet"])
def test_the_controller_updates_after_each_batch_of_children(cls, space, reward_exponent, tiny, tiny_data):
    """Two children an update over three candidates: an update after the second and one for
    the last, lone child; the reward is the children's mean accuracy (NAS-RL: cubed)."""
    space = get_space(space, tiny)
    protocol = with_section(with_candidates(tiny, 3), f"search.{cls.protocol_section}", children_per_update=2)
    strategy = cls(context(space, protocol, tiny_data))
    before = {k: v.clone() for k, v in strategy.controller.state_dict().items()}
    strategy.step()
    assert len(strategy.pending) == 1 and not strategy.history
    assert all(torch.equal(before[k], v) for k, v in strategy.controller.state_dict().items())
    result = strategy.run()
    assert [h["children"] for h in strategy.history] == [2, 1]
    assert any(not torch.equal(before[k], v) for k, v in strategy.controller.state_dict().items())
    assert strategy.history[0]["rewards"][0] == pytest.approx(
        sum(t.val_acc ** reward_exponent for t in strategy.trials[:2]) / 2)
    best = max(strategy.trials, key=lambda t: (t.val_acc, -t.index))
    assert result.arch == space.from_dict(best.arch) and result.details["child_trainings"] == 3
