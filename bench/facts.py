"""Precision and recall of the heuristic engine's fact extraction on a hand-written corpus.

    python -m bench.facts            # precision, recall, per kind of statement, every miss and false fact
    python -m bench.facts --quiet    # the figures only

The corpus, tests/memcube/consolidation/fact_corpus.jsonl, holds first-person statements (one a line) with
the facts a careful reader takes from each, in the engine's vocabulary of attributes (`lives_in`, `works_at`,
`occupation`, `name`, `age`, `from`, `partner`, `allergic_to`, `has`, `opinion` with a polarity, and
`my:<key>` for "my <key> is ..."):
- `facts`: required; recall is the share of them the engine finds;
- `also`: right but not required (a reading one may take or leave: "my brother is a doctor"); finding one
  is not a false fact, missing one is not a miss.
A value is a string or a list of acceptable strings. A produced fact is right when its attribute equals an
expected one's (and its polarity, for opinions) and its value equals one of the acceptable values once both
are normalised (case, surrounding quotes, final punctuation, a leading article). Precision is the share of
produced facts that are right. Nothing here needs a server: extraction is a pure function.
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from memcube.consolidation.heuristic import extract_facts
from memcube.consolidation.ledger import Episode

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "memcube" / "consolidation" / "fact_corpus.jsonl"
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_EDGE = re.compile(r"^[\s\"'“”‘’]+|[\s\"'“”‘’.,;:!?]+$")


def normalise(value: str) -> str:
    """Return a value as facts are compared: lower case, no surrounding quotes or final punctuation, no leading
    article, single spaces."""
    text = " ".join(value.lower().split())
    text = _EDGE.sub("", text)
    return _ARTICLE.sub("", text)


@dataclass(frozen=True)
class Expected:
    attribute: str
    values: frozenset[str]
    polarity: str | None = None

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Expected:
        values = item["value"] if isinstance(item["value"], list) else [item["value"]]
        return cls(" ".join(item["attribute"].lower().split()), frozenset(normalise(v) for v in values),
                   item.get("polarity"))

    def matches(self, attribute: str | None, value: str | None, polarity: str | None) -> bool:
        return (" ".join((attribute or "").lower().split()) == self.attribute
                and (self.polarity is None or polarity == self.polarity)
                and normalise(value or "") in self.values)


@dataclass
class Statement:
    line: int
    text: str
    kind: str
    role: str
    facts: list[Expected]
    also: list[Expected]


@dataclass
class Produced:
    statement: Statement
    attribute: str | None
    value: str | None
    polarity: str | None
    content: str


@dataclass
class Score:
    statements: int = 0
    produced: int = 0
    right: int = 0
    expected: int = 0
    found: int = 0
    false: list[Produced] = field(default_factory=list)
    misses: list[tuple[Statement, Expected]] = field(default_factory=list)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.right / self.produced if self.produced else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0


def load_corpus(path: Path = CORPUS) -> list[Statement]:
    """Return the corpus's statements, in file order."""
    statements = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        statements.append(Statement(number, item["text"], item["kind"], item.get("role", "user"),
                                    [Expected.from_json(f) for f in item["facts"]],
                                    [Expected.from_json(f) for f in item.get("also", [])]))
    return statements


def score(statements: Sequence[Statement]) -> Score:
    """Run the extraction on every statement and count right, false and missed facts."""
    result = Score(statements=len(statements))
    at = datetime(2024, 1, 10, tzinfo=timezone.utc)
    extracted = [extract_facts(Episode(id=uuid.uuid4(), version=1, session_id=None, content=s.text, speaker=None,
                                       role=s.role, at=at, vector=None, active=True)) for s in statements]
    for statement, candidates in zip(statements, extracted):
        kind = result.by_kind.setdefault(statement.kind, Counter())
        kind["statements"] += 1
        kind["expected"] += len(statement.facts)
        open_facts = list(statement.facts)
        for c in candidates:
            produced = Produced(statement, c.attribute, c.value, c.polarity, c.content)
            result.produced += 1
            kind["produced"] += 1
            hit = next((e for e in open_facts if e.matches(c.attribute, c.value, c.polarity)), None)
            if hit is not None:
                open_facts.remove(hit)
                result.found += 1
                kind["found"] += 1
            elif not any(e.matches(c.attribute, c.value, c.polarity) for e in [*statement.facts, *statement.also]):
                result.false.append(produced)
                kind["false"] += 1
                continue
            result.right += 1
        result.misses.extend((statement, e) for e in open_facts)
        result.expected += len(statement.facts)
    return result


def _expected_text(e: Expected) -> str:
    polarity = f" ({e.polarity})" if e.polarity else ""
    return f"{e.attribute} = {' | '.join(sorted(e.values))}{polarity}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.facts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a corpus file (JSON lines)")
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    result = score(load_corpus(args.corpus))
    print(f"corpus: {args.corpus.name}, {result.statements} statements, {result.expected} required facts")
    print(f"produced {result.produced} facts: {result.right} right, {len(result.false)} false; "
          f"found {result.found} of {result.expected} required facts")
    print(f"precision {result.precision:.3f}   recall {result.recall:.3f}")
    if args.quiet:
        return 0
    print(f"\n{'kind':<14}{'statements':>11}{'produced':>10}{'false':>7}{'required':>10}{'found':>7}")
    for kind, c in sorted(result.by_kind.items()):
        print(f"{kind:<14}{c['statements']:>11}{c['produced']:>10}{c['false']:>7}{c['expected']:>10}{c['found']:>7}")
    print(f"\nfalse facts ({len(result.false)}):")
    for p in result.false:
        print(f"  line {p.statement.line}: {p.statement.text!r}\n      -> {p.attribute} = {p.value!r}"
              f"{f' ({p.polarity})' if p.polarity else ''}: {p.content!r}")
    print(f"\nmisses ({len(result.misses)}):")
    for statement, e in result.misses:
        print(f"  line {statement.line}: {statement.text!r}\n      wants {_expected_text(e)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
