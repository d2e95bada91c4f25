"""Trust in consolidation: a new fact from less trusted origins does not overturn what more trusted ones said.

Memory poisoning works by repetition and by contradiction: a web page or a tool result that says "the user
lives in Paris" would, left to the usual rule (a new value supersedes the old), close the fact that the user
said in person three times. Here a candidate that would supersede a fact is weighed against the fact's
evidence: when at least MEMCUBE_POISON_CONSENSUS_MIN memories behind the fact come from origins more trusted
than every memory behind the candidate (MEMCUBE_POISON_TRUST, memcube/poisoning.py), the candidate is stored
`quarantined` for review, linked to the fact it contradicts, and the fact stays active. Pure: the origins are
looked up by run.py.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from memcube.consolidation.ledger import Candidate, Fact
from memcube.poisoning import trust_of


def evidence_ids(fact: Fact) -> list[str]:
    """Return the ids of the memories a fact rests on: its lineage, or the fact itself when it has none (a fact
    written through the API)."""
    ids = [str(ref["id"]) for ref in fact.derived_from if isinstance(ref, dict) and ref.get("id")]
    return ids or [str(fact.id)]


def contradiction_reason(candidate: Candidate, target: Fact, *, origins: Mapping[str, str],
                         trust: Mapping[str, float], consensus_min: int) -> str | None:
    """Return why a candidate that contradicts `target` is quarantined instead of superseding it, or None when
    it may supersede. `origins` maps memory ids (the candidate's episodes and the target's evidence) to their
    origin; an id it lacks counts as `unknown`."""
    if consensus_min <= 0:
        return None
    mine = sorted({origins.get(str(e.id), "unknown") for e in candidate.evidence})
    level = max((trust_of(o, trust) for o in mine), default=trust_of("unknown", trust))
    backing: Sequence[str] = [origins.get(i, "unknown") for i in evidence_ids(target)]
    stronger = [o for o in backing if trust_of(o, trust) > level]
    if len(stronger) < consensus_min:
        return None
    return (f"quarantined: contradicts {target.id} ({target.content!r}), which {len(stronger)} memories from more "
            f"trusted origins ({', '.join(sorted(set(stronger)))}) back, from origin {', '.join(mine)} "
            f"(trust {level:g}); kept for review")
