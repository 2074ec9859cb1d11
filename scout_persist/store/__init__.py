"""One store over any URL: :class:`Store` on top of a small backend interface, one module per backend.

``store/backend.py`` says what a backend is (primitives and capabilities); ``local.py``, ``memory.py``, ``s3.py``
and ``generic.py`` (any other fsspec file system) implement it; ``facade.py`` is the :class:`Store` every caller
uses (keys, safety checks, error translation and retries, once); ``addressing.py`` checks root URLs and keys;
``faults.py`` tells transient errors from real ones.  Nothing outside this package touches fsspec or asks which
backend it has: callers choose by :attr:`Store.capabilities`.
"""

from __future__ import annotations

from .addressing import DEFAULT_URL, URL_VARIABLE, check_key, default_url, store_url
from .backend import ABSENT, TEMP_PREFIX, Backend, Capabilities, Conflict, Sync, Upload, Versioned
from .facade import Store, shared_store
from .faults import RETRIES, RETRY_BASE_DELAY, is_transient
from .s3 import SINGLE_PUT_MAX

__all__ = [
    "ABSENT",
    "DEFAULT_URL",
    "RETRIES",
    "RETRY_BASE_DELAY",
    "SINGLE_PUT_MAX",
    "TEMP_PREFIX",
    "URL_VARIABLE",
    "Backend",
    "Capabilities",
    "Conflict",
    "Store",
    "Sync",
    "Upload",
    "Versioned",
    "check_key",
    "default_url",
    "is_transient",
    "shared_store",
    "store_url",
]
