"""Plug-in pieces without flows: registration, serializer decoding rules, annotation types, job_name checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefect_scout import JobName, ScoutSerializer, job_name
from prefect_scout.cache_policy import current_job_name, scout_type_of
from scout_persist.errors import CorruptPayloadError, InvalidInputError


def test_collection_entry_point_registers_blocks_and_serializer():
    from prefect._internal.result_records import ResultRecordMetadata
    from prefect.blocks.core import Block
    from prefect.plugins import load_prefect_collections

    assert "prefect_scout" in load_prefect_collections()
    assert Block.get_block_class_from_key("scout-persist-storage").__name__ == "ScoutStorage"
    assert Block.get_block_class_from_key("scout-persist-info").__name__ == "ScoutInfoStorage"
    meta = ResultRecordMetadata.load_bytes(
        json.dumps({"storage_key": "W/t/x", "serializer": {"type": "scout-persist", "scout_type": "integer"}}).encode()
    )
    assert isinstance(meta.serializer, ScoutSerializer) and meta.serializer.scout_type == "integer"


def test_serializer_decodes_only_bytes_the_hit_check_verified():
    """No stored byte is decoded (let alone unpickled) by a guess: bytes reaching the serializer any other way than
    through the hit check (checksum against the job's .info) are refused, whatever they look like."""
    from scout_persist import pickle_envelope

    pickled = pickle_envelope.dump_pickle({"x": {1, 2}})
    for scout_type in (None, "pickle", "json", "binary"):
        for blob in (pickled, b"42", b"Whisking eggs"):
            with pytest.raises(CorruptPayloadError, match="without passing the scout hit check"):
                ScoutSerializer(scout_type=scout_type).loads(blob)
    assert ScoutSerializer(scout_type="json").dumps({"a": 1}) == b""  # the task wrapper stored the job itself


def test_annotation_types():
    assert [scout_type_of(h) for h in (bool, int, float, str, list, dict, Path, list[int], int | None)] == [
        "boolean",
        "integer",
        "float",
        "string",
        "array",
        "hash",
        "file",
        "integer_array",
        "integer",
    ]
    assert scout_type_of(JobName) == "string" and scout_type_of("bool") == "boolean"


def test_job_name_context_and_bad_names():
    assert current_job_name() is None
    with job_name("outer"):
        with job_name("inner"):
            assert current_job_name() == "inner"
        assert current_job_name() == "outer"
    assert current_job_name() is None
    with pytest.raises(InvalidInputError):
        job_name("")


def test_scout_task_wiring_cannot_persist_silently_nowhere():
    """Guards against Prefect's silent non-persistence: binary serializer without key storage, no lock manager."""
    from prefect_scout import ScoutCachePolicy, ScoutInfoStorage, ScoutLockManager, scout_task
    from scout_persist.errors import ScoutPersistError

    @scout_task(type="string", workflow="W")
    def t(x: str = "a") -> str:
        return x

    policy = t.cache_policy
    assert isinstance(policy, ScoutCachePolicy)
    assert isinstance(policy.key_storage, ScoutInfoStorage)  # split layout: payload raw, metadata in .info
    assert isinstance(policy.lock_manager, ScoutLockManager) and policy.isolation_level == "SERIALIZABLE"
    assert t.persist_result is True and isinstance(t.result_serializer, ScoutSerializer)
    assert t.result_storage_key is None  # it would bypass the Scout key
    for bad in ("cache_policy", "result_storage_key", "result_serializer", "result_storage", "cache_key_fn"):
        with pytest.raises(ScoutPersistError):
            scout_task(lambda: 1, **{bad: None})
