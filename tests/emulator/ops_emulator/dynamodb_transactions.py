"""DynamoDB ``TransactWriteItems`` at the speed AWS serves it.

moto 5.2.5 takes a snapshot of the whole table (for the rollback of a cancelled transaction) once
per *item* of the transaction, before applying any: a 100-item transaction into a 2,000-item table
deep-copies 200,000 items and takes seconds, growing with the table. AWS serves up to 100 actions
in one call in milliseconds (API reference: TransactWriteItems,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
legacy-health-monitor writes its target states in such transactions.

The patch makes moto take one snapshot per table per call. Every snapshot is taken before any item
is applied, so they are all equal and one serves: what the call does (all or nothing, conditions,
``CancellationReasons``) is moto's own code, unchanged.
"""

from __future__ import annotations

import copy
import threading

import moto.dynamodb.models as models
from moto.dynamodb.models.table import Table

# Transactions are applied one at a time while the snapshot shim is in place.
_LOCK = threading.Lock()


class _OncePerTable:
    """Stands in for the ``copy`` module inside moto's transaction: one deep copy per table."""

    def __init__(self) -> None:
        self._copies: dict[int, Table] = {}

    def deepcopy(self, value, memo=None):
        if isinstance(value, Table):
            if id(value) not in self._copies:
                self._copies[id(value)] = copy.deepcopy(value)
            return self._copies[id(value)]
        return copy.deepcopy(value, memo)


def install() -> None:
    """Patch moto's TransactWriteItems to snapshot each table once per call."""
    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_ops_patched", False):
        return
    original = backend.transact_write_items

    def transact_write_items(self, transact_items):
        with _LOCK:
            models.copy = _OncePerTable()
            try:
                return original(self, transact_items)
            finally:
                models.copy = copy

    transact_write_items._ops_patched = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items
