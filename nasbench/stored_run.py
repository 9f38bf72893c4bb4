"""A stored run that a command rebuilds (``nasbench export``), found and checked before torch
is imported: it exists, has a final network, its stored protocol still hashes as it did, and
it agrees with the ``--protocol`` and ``--space`` the user gave."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasbench.errors import NasbenchError
from nasbench.protocol import Protocol, protocol_from_json
from nasbench.spaces import SPACES
from nasbench.store import Store, check_store_path


@dataclass(frozen=True)
class StoredRun:
    """A finished run's row, the protocol it was made under, and the store holding it."""

    row: dict[str, Any]
    protocol: Protocol
    path: Path


def find_stored_run(store_path: Path, run_id: int, protocol: Protocol | None = None,
                    space: str | None = None) -> StoredRun:
    """Run ``run_id`` of the store at ``store_path``; ``protocol`` and ``space``, where given,
    must be the run's (the same hash and space layout), or it is a one-line error."""
    check_store_path(store_path, write=False)
    with Store(store_path, readonly=True) as store:
        row = next((r for r in store.all_runs() if r["id"] == run_id), None)
    if row is None:
        raise NasbenchError(f"no run {run_id} in {store_path} (`nasbench list runs --store {store_path}` lists them)")
    if row["genotype_json"] is None:
        raise NasbenchError(f"run {run_id} is {row['status']}: it has no final network to export")
    stored = protocol_from_json(row["protocol_json"], f"run {run_id}'s stored protocol")
    if stored.hash != row["protocol_hash"]:
        raise NasbenchError(f"run {run_id}'s stored protocol hashes to {stored.hash} under this nasbench, not to the "
                            f"run's {row['protocol_hash']}: its network cannot be rebuilt as it was trained")
    label = SPACES.cards()[SPACES.check(row["space"])].get("protocol_section")
    if protocol is not None and (protocol.hash != stored.hash or (label and protocol.section(label) != stored.section(label))):
        raise NasbenchError(f"run {run_id} was made under protocol {stored.name} ({stored.hash}), not under --protocol "
                            f"{protocol.name} ({protocol.hash}); leave --protocol out to export it under its own")
    if space is not None and space != row["space"]:
        raise NasbenchError(f"run {run_id} searched the {row['space']} space, not --space {space}; leave --space out")
    return StoredRun(row, stored, Path(store_path))
