"""The API for the benchmarks, as `memcube api` runs it (settings from the environment), with one addition:
texts whose vectors the benchmark computed beforehand (`--query-vectors`) are not embedded again, so that
search latency can be compared with the SQL alone. Every other text goes through the real embedder."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from bench.common import BenchEmbedder
from memcube.config import load_settings
from memcube.embedder import build_embedder
from memcube.runtime import open_runtime
from services.api.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--query-vectors", type=Path, default=None)
    args = parser.parse_args()
    settings = load_settings()
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the benchmark server listens on loopback only")
    embedder = BenchEmbedder(build_embedder(settings))
    if args.query_vectors is not None:
        embedder.load_cache(args.query_vectors)
        embedder.use_cache = True
    app = create_app(settings, runtime_factory=lambda s: open_runtime(s, embedder=embedder))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
