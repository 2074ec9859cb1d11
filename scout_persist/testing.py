"""Test support for stores: the conformance suite (see :mod:`scout_persist.store.conformance`)."""

from __future__ import annotations

from .store.conformance import StoreConformance

__all__ = ["StoreConformance"]
