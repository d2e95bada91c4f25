"""The evidence check every candidate passes: what it names must occur in the trajectories it cites."""

from memcube.lessons.evidence import check_evidence
from memcube.lessons.ledger import Candidate
from tests.memcube.lessons.support import trajectory

BOOKED = trajectory("Book a flight from Oslo to Lima", [
    ("search_flights", "find flights OSL to LIM", "3 flights"),
    ("book_seat", "book the cheapest, e.g. LA2041", "booked"),
])


def candidate(**fields):
    return Candidate(**{"polarity": "success", "when_to_use": "booking a flight", "evidence": [BOOKED], **fields})


def test_a_lesson_naming_only_what_its_trajectories_did_passes():
    assert check_evidence(candidate(steps=["search_flights: find flights", "then book_seat, e.g. the cheapest"],
                                    tools=["search_flights", "BOOK_SEAT"])) is None


def test_a_hallucinated_tool_is_rejected_in_the_tools_or_in_the_text():
    problem = check_evidence(candidate(steps=["search_flights"], tools=["search_flights", "teleport"]))
    assert "'teleport' occurs in none of the trajectories" in problem
    problem = check_evidence(candidate(steps=["first call check_visa_status", "then book_seat"]))
    assert "'check_visa_status'" in problem
    assert "'fetchPrices'" in check_evidence(candidate(avoid="calling fetchPrices twice"))
    assert check_evidence(candidate(evidence=[])) == "it cites no trajectory"
