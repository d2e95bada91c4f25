"""The ONNX embedder: its export is made once, cached, made again when its source changes or the cache is
damaged, and it computes what sentence-transformers computes. The export's own behaviour is tested on a tiny
BERT made here (a few seconds); the bundled MiniLM's int8 export is the one the whole suite runs on."""

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from memcube import onnx_embedder
from memcube.config import Settings
from memcube.embedder import BUNDLED_MODEL_NAME, TorchEmbedder, build_embedder, bundled_model_path
from memcube.errors import ConfigError
from memcube.onnx_embedder import OnnxEmbedder, cached_model, space_name

TEXTS = ["Caroline: I went to the LGBTQ support group yesterday and it was so powerful.", "hi",
         "Melanie: What did you do?", "word " * 400, ""]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A two-layer BERT with random weights, saved as a sentence-transformers folder with MiniLM's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    bundled = bundled_model_path()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                 "sentence_bert_config.json", "modules.json"):
        shutil.copy(bundled / name, folder / name)
    shutil.copytree(bundled / "1_Pooling", folder / "1_Pooling")
    torch.manual_seed(7)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(str(folder))
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(folder, target)
    return target


def test_fp32_export_computes_the_torch_vectors_padded_or_not(tiny_model, tmp_path):
    path = cached_model(tiny_model, tmp_path / "cache", "fp32", name="tiny")
    onnx = OnnxEmbedder(path, tiny_model, name=space_name("tiny", "fp32"), threads=2, batch_size=2)
    torch_vectors = np.asarray(TorchEmbedder(tiny_model, "tiny", threads=1, batch_size=8).embed(TEXTS))
    # Batches of two: texts of very different lengths share a padded chunk, and the chunks run on two threads.
    batched = onnx.embed_array(TEXTS)
    single = np.stack([onnx.embed_array([t])[0] for t in TEXTS])
    assert onnx.dim == 32
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(batched * torch_vectors, axis=1)) > 0.9999
    assert np.allclose(batched, single, atol=1e-5)
    assert space_name("tiny", "fp32") == TorchEmbedder(tiny_model, "tiny", 1, 8).name


def test_export_is_cached_and_made_again_when_the_source_changes(tiny_model, tmp_path):
    source = copy_of(tiny_model, tmp_path)
    cache = tmp_path / "cache"
    first = cached_model(source, cache, "int8", name="tiny")
    made = first.stat().st_mtime_ns
    manifest = json.loads((first.parent / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and manifest["source"] == str(source)
    assert cached_model(source, cache, "int8", name="tiny") == first
    assert first.stat().st_mtime_ns == made, "a fresh cache is used as it is"

    # The source changes (a new model version unpacked over it): a new export, and the old one goes.
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "note": "retrained"}))
    second = cached_model(source, cache, "int8", name="tiny")
    assert second != first and second.is_file()
    assert not first.parent.exists()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [second.parent.name]

    # A damaged cache (the model file lost) is made again in place.
    second.unlink()
    third = cached_model(source, cache, "int8", name="tiny")
    assert third == second and third.is_file()
    vectors = OnnxEmbedder(third, source, name="t", threads=1, batch_size=64).embed(TEXTS)
    assert len(vectors) == len(TEXTS) and all(len(v) == 32 for v in vectors)


def test_processes_starting_together_export_once(tiny_model, tmp_path, monkeypatch):
    builds = []
    real_build = onnx_embedder._build
    monkeypatch.setattr(onnx_embedder, "_build", lambda *a: (builds.append(a), real_build(*a)))
    results: list[Path] = []
    # flock is per open file: two threads here contend for the lock as two processes would.
    threads = [threading.Thread(target=lambda: results.append(cached_model(tiny_model, tmp_path, "fp32", name="t")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert len(set(results)) == 1 and results[0].is_file()
    assert not [p for p in tmp_path.iterdir() if ".building" in p.name]


def test_a_folder_that_is_not_a_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        cached_model(tmp_path, tmp_path / "cache", "int8", name="x")
    with pytest.raises(ConfigError, match="does not exist"):
        build_embedder(Settings(embedder="onnx", embed_model=str(tmp_path / "missing"), model_cache=tmp_path))


def test_the_default_embedder_is_int8_minilm_close_to_torch(embedder):
    """The suite's embedder (the default): MiniLM int8, a space of its own, within cosine 0.97 of torch's."""
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.name == f"onnx-int8:{BUNDLED_MODEL_NAME}" and embedder.dim == 384
    torch_embedder = TorchEmbedder(bundled_model_path(), BUNDLED_MODEL_NAME, threads=1, batch_size=64)
    assert torch_embedder.name != embedder.name
    ours = np.asarray(embedder.embed(TEXTS))
    theirs = np.asarray(torch_embedder.embed(TEXTS))
    assert np.min(np.sum(ours * theirs, axis=1)) > 0.97
    # Still the same model: the nearest text of each is itself.
    assert list(np.argmax(ours @ theirs.T, axis=1)[:4]) == [0, 1, 2, 3]


def test_default_settings_build_the_onnx_int8_embedder():
    settings = Settings()
    assert settings.embedder == "onnx" and settings.onnx_precision == "int8"
    assert settings.resolved_model_cache() == (Path(os.environ["MEMCUBE_MODEL_CACHE"]).resolve())
    assert Settings(model_cache=None, home=Path("/srv/mc")).resolved_model_cache() == Path("/srv/mc/models")
