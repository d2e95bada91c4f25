"""The mem0 side of `bench.peer`: mem0 OSS in process, driven over stdin/stdout (one JSON object a line).

Runs in the benchmark's own virtualenv, where mem0ai is installed (bench/peer.py makes it); it imports nothing
from MemCube. Each answer carries the wall time and this process's CPU time of the operation, measured here,
in process, as a mem0 user would see them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _timed(fn: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0, result


def main() -> int:
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    memory = None
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "init":
            import torch
            from mem0 import Memory

            # The same thread count as MemCube's torch embedder: two torch threads on two shared cores are a trap.
            torch.set_num_threads(request["torch_threads"])
            memory = Memory.from_config({
                "vector_store": {"provider": "pgvector", "config": {
                    "connection_string": request["dsn"], "collection_name": "mem0", "embedding_model_dims": 384,
                    "hnsw": True}},
                "embedder": {"provider": "huggingface", "config": {"model": request["model"], "embedding_dims": 384}},
                # Never called: every add is infer=False, and search uses no LLM.
                "llm": {"provider": "openai", "config": {"api_key": "unused", "model": "unused"}},
                "history_db_path": request["history_db_path"],
            })
            answer: dict[str, Any] = {"pid": os.getpid(), "version": __import__("mem0").__version__}
        elif op == "add":
            ms, cpu, _ = _timed(lambda: memory.add([{"role": "user", "content": request["text"]}],
                                                   user_id=request["user_id"], infer=False))
            answer = {"ms": ms, "cpu_ms": cpu}
        elif op == "add_many":
            def loop() -> None:
                for text, user in zip(request["texts"], request["user_ids"]):
                    memory.add([{"role": "user", "content": text}], user_id=user, infer=False)
            ms, cpu, _ = _timed(loop)
            answer = {"ms": ms, "cpu_ms": cpu}
        elif op == "search":
            ms, cpu, found = _timed(lambda: memory.search(request["query"], filters={"user_id": request["user_id"]},
                                                          top_k=request["k"], threshold=0.0))
            embed_ms, _, _ = _timed(lambda: memory.embedding_model.embed(request["query"], "search"))
            answer = {"ms": ms, "cpu_ms": cpu, "hits": len(found["results"]), "embed_ms": embed_ms}
        elif op == "stop":
            print(json.dumps({"stopped": True}), flush=True)
            return 0
        else:
            answer = {"error": f"unknown op {op}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
