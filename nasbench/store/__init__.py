"""The results store: an embedded SQLite database.

One row per (method, seed, protocol, data) attempt in ``runs`` with everything needed to
reproduce it (the protocol itself, device, software versions, git commit), the search's
trials in ``trials``, and the strategy's checkpoint so an interrupted run resumes: its JSON
part in ``runs.state_json``, its tensors (``torch.save`` bytes) in ``checkpoint_tensors``,
written together. A finished run's trained final network (its state dict, auxiliary head
left out) is kept in ``final_weights`` unless ``nasbench run --no-keep-weights``, so that
``nasbench export`` needs no retraining. Every write is one transaction; a finished run is
superseded only by an explicit ``--force``.

``nasbench rank`` keeps its experiments in ``rankings`` (one per method, seed, protocol,
data and number of architectures, with the same provenance as a run and the ranking
figures), their (supernet, stand-alone) accuracy pairs in ``ranking_pairs`` as each is
measured, and the supernet a ranking trains itself, while it still needs it, in
``ranking_supernets``.

A method whose first stage other runs can reuse (SPOS' and random-ws' supernet, trained
the same whatever the constraint that follows) keeps it in ``shared_stages`` when it
completes, keyed by stage, space, protocol, data and seed (:func:`shared_stage_key`), with
the run that computed it and the seconds it took.

The published figures the report compares with are read here too (:mod:`.baselines`), from
``baselines/``, so that the report reads everything it shows through the store.
"""
from nasbench.store.access import check_store_path
from nasbench.store.claims import Claim, ClaimHeld, ClaimLost, Holder
from nasbench.store.database import (
                                    Store,
                                    iter_finished,
                                    ranking_record,
                                    tensors_from_bytes,
                                    tensors_to_bytes,
)
from nasbench.store.lifecycle import error_line, failure_recorded
from nasbench.store.records import (
                                    MEASURES,
                                    TOP_FRACTION,
                                    UNFINISHED,
                                    RankingKey,
                                    RankingOutcome,
                                    RankingStart,
                                    RunKey,
                                    RunOutcome,
                                    RunStart,
                                    SharedStage,
                                    shared_stage_key,
)

__all__ = ["Claim", "ClaimHeld", "ClaimLost", "Holder", "check_store_path", "MEASURES", "TOP_FRACTION", "UNFINISHED", "RankingKey", "RankingOutcome", "RankingStart", "RunKey",
           "RunOutcome", "RunStart", "SharedStage", "Store", "error_line", "failure_recorded", "iter_finished", "ranking_record",
           "shared_stage_key", "tensors_from_bytes", "tensors_to_bytes"]
