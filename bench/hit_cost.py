"""Our own layer's cost per cache hit, without Prefect's orchestration: what the plug-in's storage blocks do
for one hit (metadata check from the job's ``.info``, then the payload read and decode), timed over N jobs
(``repeat`` passes over them: the median pass is reported).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time


def run(n_jobs: int = 500, repeat: int = 1) -> dict:
    from prefect_scout.result_serializer import ScoutSerializer
    from prefect_scout.storage import ScoutInfoStorage, ScoutStorage
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    with tempfile.TemporaryDirectory(prefix="bench-hit-") as root:
        store = Store(root)
        keys = [f"Bench/square/Default_{i:04d}" for i in range(n_jobs)]
        for i, key in enumerate(keys):
            writer = JobWriter(store, f"var/jobs/{key}", type="integer")
            writer.setup(inputs=[i], input_names=["i"])
            writer.start()
            writer.save(i * i)
            writer.info.set("stored_size", store.size(f"var/jobs/{key}"))
            writer.done()
        meta, results = ScoutInfoStorage(url=root), ScoutStorage(url=root)
        passes = []
        for _ in range(repeat):
            t = time.perf_counter()
            for i, key in enumerate(keys):
                record = json.loads(meta.read_path(key, _sync=True))
                serializer = ScoutSerializer(**record["serializer"])  # as Prefect rebuilds it from the metadata
                value = serializer.loads(results.read_path(key, _sync=True))
                if record["storage_key"] != key or int(value) != i * i:
                    raise RuntimeError(f"hit on {key} returned {value!r}")
            passes.append(time.perf_counter() - t)
        seconds = statistics.median(passes)
    return {"jobs": n_jobs, "seconds": seconds, "ms_per_hit": seconds / n_jobs * 1e3, "passes": passes}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 500), indent=2))
