"""The default embedder: a sentence-transformers model run by ONNX Runtime from an export of its own weights.

The export is made once, from the local model folder (the bundled all-MiniLM-L6-v2 unless MEMCUBE_EMBED_MODEL
names another), by `torch.onnx.export` in a child process (so a serving process never loads torch), then, for
`int8`, quantized dynamically with per-channel weights: the default per-tensor scheme saturates on CPUs without
VNNI (cosine 0.95 to the fp32 vectors against 0.99 per channel). It is kept in the model cache
(MEMCUBE_MODEL_CACHE, default `$MEMCUBE_HOME/models`) under a fingerprint of the source folder and the recipe,
so a changed model folder, recipe or ONNX Runtime gets a new export; a missing or unreadable one is made again.
Processes that start together (the API and a worker) build it once: the others wait on a file lock.

Texts are tokenized with the model's own `tokenizer.json` (truncated at the model's max_seq_length, padded only
to the longest text of each chunk: the bundled tokenizer.json pads every text to 128 tokens unless told
otherwise), mean-pooled over the attention mask and normalized, as sentence-transformers does.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np

from memcube.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]
# Bump when the export or quantization changes what a cached model computes.
RECIPE = 1
OPSET = 17
BUILD_TIMEOUT_SECONDS = 900
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"


def space_name(model_name: str, precision: Precision) -> str:
    """Return the embedding space an ONNX model of this precision writes.

    fp32 computes the torch embedder's vectors (cosine 1.000, tests/memcube/test_onnx_embedder.py), so it shares
    the torch embedder's space name and needs no re-embedding; int8 vectors differ slightly (cosine 0.99), so
    they are a space of their own.
    """
    return f"local:{model_name}" if precision == "fp32" else f"onnx-int8:{model_name}"


def source_fingerprint(source: Path, precision: Precision) -> str:
    """Return a digest of the model folder (every file's path, size and modification time) and the recipe."""
    import onnxruntime

    digest = hashlib.sha256(f"recipe={RECIPE};opset={OPSET};precision={precision};"
                            f"onnxruntime={onnxruntime.__version__}".encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"\n{path.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _usable(folder: Path, fingerprint: str) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("fingerprint") == fingerprint and (folder / MODEL_FILE).is_file()


def cached_model(source: Path, cache: Path, precision: Precision, *, name: str) -> Path:
    """Return the cached ONNX export of a model folder, making it first when it is missing or stale.

    Raises ConfigError when the folder is not a model or the export fails.
    """
    if not (source / "tokenizer.json").is_file() or not (source / "config.json").is_file():
        raise ConfigError(f"{source} is not a sentence-transformers model folder (tokenizer.json, config.json)")
    fingerprint = source_fingerprint(source, precision)
    folder = cache / f"{name}-{precision}-{fingerprint}"
    if _usable(folder, fingerprint):
        return folder / MODEL_FILE
    with _locked(cache):
        if _usable(folder, fingerprint):  # another process built it while this one waited
            return folder / MODEL_FILE
        _build(source, folder, precision, fingerprint)
        for stale in cache.glob(f"{name}-{precision}-*"):
            if stale != folder and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    return folder / MODEL_FILE


def _build(source: Path, folder: Path, precision: Precision, fingerprint: str) -> None:
    """Export in a child process into a fresh folder, then move it into place (readers never see half a model)."""
    work = folder.with_name(folder.name + f".building-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    log.info("exporting %s to ONNX (%s) under %s; this happens once", source, precision, folder)
    command = [sys.executable, "-m", "memcube.onnx_embedder", "--source", str(source), "--out", str(work),
               "--precision", precision]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ConfigError(f"exporting {source} to ONNX took over {BUILD_TIMEOUT_SECONDS} s") from exc
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise ConfigError(f"exporting {source} to ONNX failed: {result.stderr.strip()[-2000:]}")
    manifest = {"fingerprint": fingerprint, "source": str(source), "precision": precision, "recipe": RECIPE,
                "seconds": round(time.monotonic() - started, 1)}
    (work / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    os.replace(work, folder)
    log.info("ONNX export ready in %.1f s", manifest["seconds"])


def export_model(source: Path, out: Path, precision: Precision) -> None:
    """Export a sentence-transformers folder to `out/model.onnx`: token ids and attention mask in, mean-pooled
    normalized vectors out; quantized to int8 (dynamic, per-channel weights) for `int8`. Needs torch."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(source), attn_implementation="eager")
    model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    # The example is padded: traced with an all-ones mask, the model may drop the mask from the graph.
    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    fp32 = out / ("model-fp32.onnx" if precision == "int8" else MODEL_FILE)
    with torch.no_grad():
        torch.onnx.export(Pooled(model), (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})
    if precision == "int8":
        from onnx import TensorProto
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(out / MODEL_FILE), per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
        fp32.unlink()


def _pooling_is_mean(source: Path) -> bool:
    try:
        config = json.loads((source / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return True  # no pooling module recorded: sentence-transformers' default is the mean
    return bool(config.get("pooling_mode_mean_tokens", True))


def _max_tokens(source: Path) -> int:
    try:
        return int(json.loads((source / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


class OnnxEmbedder:
    """A cached ONNX export on ONNX Runtime: one intra-op thread per call, so concurrent requests run side by side
    and a single query never waits for threads to wake; a large batch is split into chunks of similar length
    that `threads` calls run at once."""

    def __init__(self, model_path: Path, source: Path, *, name: str, threads: int, batch_size: int) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime
        from tokenizers import Tokenizer

        if not _pooling_is_mean(source):
            raise ConfigError(f"{source} pools by something other than the mean; use MEMCUBE_EMBEDDER=torch")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # Idle threads that spin burn a core on a shared machine; one thread per call has nothing to wake.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_max_tokens(source))
        width = self._session.get_outputs()[0].shape[-1]
        self.dim = width if isinstance(width, int) else int(self._run(["dimension probe"]).shape[1])
        self.name = name
        self._batch_size = batch_size
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="embed") if threads > 1 else None

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self.embed_array(texts).tolist()

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Return the vectors as a float32 matrix, one row per text, in order."""
        if len(texts) <= self._batch_size:
            return self._run(list(texts))
        # Texts of similar length share a chunk, so little of a chunk is padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start:start + self._batch_size] for start in range(0, len(order), self._batch_size)]
        run = lambda chunk: self._run([texts[i] for i in chunk])  # noqa: E731 - a local shorthand
        results = list(self._pool.map(run, chunks)) if self._pool else [run(c) for c in chunks]
        out = np.empty((len(texts), results[0].shape[1]), dtype=np.float32)
        for chunk, vectors in zip(chunks, results):
            out[chunk] = vectors
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        try:
            return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
            raise Unavailable(f"the ONNX embedder failed: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    """`python -m memcube.onnx_embedder`: make the configured embedder's export now (at install: the image build);
    with --source/--out/--precision, the export step itself, run in a child process by `_build`."""
    parser = argparse.ArgumentParser(prog="python -m memcube.onnx_embedder")
    parser.add_argument("--source", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--precision", choices=["int8", "fp32"])
    args = parser.parse_args(argv)
    if args.source is None:
        from memcube.config import load_settings
        from memcube.embedder import build_embedder

        embedder = build_embedder(load_settings())
        print(f"embedder ready: {embedder.name} ({embedder.dim} dimensions)")
        return 0
    export_model(args.source, args.out, args.precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
