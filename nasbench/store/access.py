"""Whether a path can be a results store, decided without writing to it.

A store path is checked with the rest of a command's input, before any data is loaded
or anything is written: an existing file must be a nasbench store of this schema version
(any other SQLite database is left untouched) and writable when the command writes; a new
one must be creatable. Nothing here creates a file or changes a byte of one.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from nasbench.errors import NasbenchError
from nasbench.store.schema import SCHEMA_VERSION

NASBENCH_TABLES = {"meta", "runs", "trials"}
"""Tables every nasbench store has had since its first schema version."""


def check_store_path(path: Path, write: bool) -> None:
    """Refuse a ``--store`` path that is not, or cannot become, a nasbench store (for
    ``write``: one this process may write)."""
    path = Path(path)
    if path.is_dir():
        raise NasbenchError(f"--store {path} is a directory; give a file path such as {path / 'nasbench.sqlite'}")
    if path.exists():
        identify(path)
        if write:
            _check_writable(path)
    elif write:
        _check_creatable(path)
    else:
        raise NasbenchError(f"no results store at {path}; run `nasbench run ...` first or pass --store PATH")


def identify(path: Path) -> None:
    """Refuse ``path`` unless it is empty or a nasbench store of :data:`SCHEMA_VERSION`,
    reading it through a read-only connection."""
    if path.stat().st_size == 0:
        return  # an empty file is an empty SQLite database: it becomes a new store
    try:
        with closing(connect_read_only(path)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if NASBENCH_TABLES <= tables:
                version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as err:
        raise NasbenchError(f"--store {path} is not a nasbench results database ({err}); use another --store") from None
    if not tables:
        return
    if version is None:
        raise NasbenchError(f"--store {path} is an SQLite database but not a nasbench store (its tables: "
                            f"{', '.join(sorted(tables))}); it was left untouched: use another --store")
    if version[0] != str(SCHEMA_VERSION):
        raise NasbenchError(f"store {path} has schema version {version[0]}, this nasbench reads {SCHEMA_VERSION}; "
                            "use another --store")


def connect_read_only(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection that cannot change the file at ``path`` (SQLite's ``mode=ro``)."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)


def _check_writable(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as err:
        raise NasbenchError(f"--store {path} cannot be written ({err.strerror}); make it writable or use another "
                            "--store") from None
    _probe_directory(path.parent, f"--store {path}: its directory")


def _check_creatable(path: Path) -> None:
    """The nearest existing parent must be a directory this process can create entries in."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NasbenchError(f"--store {path} cannot be created: {parent} is a file, not a directory")
    _probe_directory(parent, f"--store {path} cannot be created:")


def _probe_directory(folder: Path, what: str) -> None:
    """Create and remove an empty directory in ``folder``: the one test of writability that
    holds for root, read-only mounts and pseudo file systems alike (SQLite needs to create
    its journal beside the store)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".nasbench-probe-", dir=folder))
    except OSError as err:
        raise NasbenchError(f"{what} {folder} does not accept new files ({err.strerror}); use another --store") from None
