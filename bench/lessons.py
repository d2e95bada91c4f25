"""Lessons: do distilled lessons make a simple agent succeed at tasks it has not seen?

    python -m bench.lessons            # 20 task types × 10 variants, 5 rounds (~4 min here)
    python -m bench.lessons --quick    # 6 task types, 3 rounds

The task family is synthetic and no prompt knows it: the cold store of a fictional biobank, with 24 invented
tools (`vault_unseal`, `rack_locate`, `sample_pull`, ...) and 20 task types ("Retrieve sample S-4821 from
freezer Aurora", "Split sample S-1177 into 4 aliquots", ...), each solved by exactly one tool sequence of
2 to 5 tools, most of which the task never names (the vault must be unsealed before a sample is pulled,
and resealed after). Several types read alike ("Retrieve", "Store", "Move" and "Refreeze" a sample of a
freezer). Each type has 10 variants (other samples, freezers, sites, ...): 7 the agent meets, 3 held out.
The world checks a plan step by step: the first tool that is not the expected one fails with an error, and
a plan that stops short fails as unfinished.

Each round, through the API (its own process) for every type:
1. scripted trajectories on seen variants: one success (the right sequence), one failure (the right prefix,
   then a wrong tool and its error); in round 1, for 4 types, a misleading one first: reported as a success,
   but its sequence is wrong (a mislabelled run);
2. distillation (POST /v1/agents/{agent}/distill, heuristic engine, run in this process as a worker runs it);
3. the agent works a seen variant and reports its trajectory with the lesson it followed (lessons_used), so
   utility counts; these trajectories are distilled the next round;
4. measured on the 60 held-out variants, read-only: lessons per type, precision@3 of GET /v1/lessons
   (the share of the top 3 that come from the task's own type, by lineage, with the right steps if they have
   steps), how often a lesson with the right steps is in the top 3, and the agent's success rate.

The agent: GET /v1/lessons for the task (top 3); if one has steps (a success or comparative lesson), it
follows the tools of the best such lesson; otherwise it plans from keywords (tools whose keyword the task
names, in the order named) minus the tools a failure lesson says to avoid. Without lessons, it plans from
keywords only.

Then: how fast a deliberately wrong lesson retires (an agent of its own whose only lesson is wrong, used
until it is no longer served), and the LLM engine against the local OpenAI-protocol stub
(tests/llm_server.py) on the same scripted trajectories: calls and tokens per trajectory. The stub answers at
once and reports characters / 4 as tokens: the prompt side is ours, the answer side is the stub's.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import httpx

from bench.common import Bench, Report, load_embedder, machine_state
from memcube.lessons.distill import run_distillation
from memcube.lessons.heuristic import mask
from memcube.lessons.trajectory import record_trajectory
from memcube.lessons.trigger import enqueue_distillation
from memcube.llm import OpenAILLM
from memcube.models import TrajectoryCreate
from memcube.runtime import Runtime, open_runtime
from tests.llm_server import LLMServer, Request

TENANT = "biobank"
SEEN, HELD_OUT = 7, 3
MISLEADING_TYPES = 4

# Each tool and the words that make the keyword planner pick it.
TOOLS = {
    "vault_unseal": ["unseal"], "vault_reseal": ["reseal"], "rack_locate": ["locate"],
    "sample_pull": ["retrieve", "pull"], "sample_stow": ["store", "stow"], "thaw_cycle": ["thaw"],
    "chill_cycle": ["refreeze", "chill"], "label_print": ["label", "labels", "relabel"],
    "ledger_stamp": ["record", "log"], "courier_book": ["courier"], "manifest_sign": ["manifest"],
    "probe_calibrate": ["calibrate"], "probe_read": ["measure", "temperature"], "alarm_mute": ["silence", "mute"],
    "alarm_reset": ["reset"], "audit_open": ["open"], "audit_close": ["close"], "consent_check": ["consent"],
    "aliquot_split": ["split", "aliquots"], "barcode_scan": ["scan", "barcode"], "spill_kit": ["spill"],
    "quarantine_flag": ["quarantine"], "dispose_hazard": ["destroy", "dispose"], "permit_request": ["permit"],
}


@dataclass(frozen=True)
class TaskType:
    template: str
    tools: tuple[str, ...]


TYPES = [
    TaskType("Retrieve sample {sid} from freezer {freezer}",
             ("vault_unseal", "rack_locate", "sample_pull", "vault_reseal", "ledger_stamp")),
    TaskType("Store sample {sid} in freezer {freezer}",
             ("vault_unseal", "barcode_scan", "sample_stow", "vault_reseal", "ledger_stamp")),
    TaskType("Ship sample {sid} to the {site} biobank", ("consent_check", "sample_pull", "manifest_sign",
                                                          "courier_book")),
    TaskType("Thaw sample {sid} for the {lab} lab", ("sample_pull", "thaw_cycle", "ledger_stamp")),
    TaskType("Split sample {sid} into {n} aliquots", ("thaw_cycle", "aliquot_split", "label_print", "chill_cycle")),
    TaskType("Calibrate the probe of freezer {freezer}", ("alarm_mute", "probe_calibrate", "probe_read",
                                                           "alarm_reset")),
    TaskType("Measure the temperature of freezer {freezer} and record it", ("probe_read", "ledger_stamp")),
    TaskType("Silence the alarm of freezer {freezer} after a door opening", ("alarm_mute", "probe_read",
                                                                              "alarm_reset")),
    TaskType("Relabel sample {sid} after a smudged label", ("barcode_scan", "label_print", "ledger_stamp")),
    TaskType("Open an audit of freezer {freezer} for {month}", ("audit_open", "rack_locate", "barcode_scan")),
    TaskType("Quarantine sample {sid} after a failed consent review", ("consent_check", "quarantine_flag",
                                                                        "ledger_stamp")),
    TaskType("Destroy sample {sid} as hazardous waste", ("permit_request", "sample_pull", "dispose_hazard",
                                                          "ledger_stamp")),
    TaskType("Clean up a spill in bay {bay}", ("alarm_mute", "spill_kit", "alarm_reset", "ledger_stamp")),
    TaskType("Move sample {sid} from freezer {freezer} to freezer {other}",
             ("vault_unseal", "sample_pull", "chill_cycle", "sample_stow", "vault_reseal")),
    TaskType("Get a permit and sign the manifest for {n} samples from {site}", ("permit_request", "manifest_sign")),
    TaskType("Refreeze sample {sid} after the {lab} lab is done with it", ("chill_cycle", "barcode_scan",
                                                                            "sample_stow")),
    TaskType("Confirm the donor agreement of sample {sid} before the {lab} study", ("consent_check",
                                                                                     "ledger_stamp")),
    TaskType("Scan the barcode of sample {sid} and print its labels", ("barcode_scan", "label_print")),
    TaskType("Finish the audit of freezer {freezer} for {month}", ("rack_locate", "audit_close", "ledger_stamp")),
    TaskType("Report a temperature excursion in freezer {freezer}", ("probe_read", "quarantine_flag", "ledger_stamp",
                                                                      "alarm_reset")),
]
SLOTS = {
    "freezer": ["Aurora", "Boreal", "Cinder", "Dune", "Ember", "Fjord", "Glacier", "Harbor", "Ion", "Juniper",
                "Kestrel", "Lumen"],
    "site": ["Lisbon", "Tartu", "Quito", "Nairobi", "Osaka", "Perth", "Recife", "Tromsø"],
    "lab": ["genomics", "proteomics", "virology", "oncology", "cardiology", "neurology"],
    "month": ["January", "March", "May", "July", "September", "November"],
}
ERRORS = ["refused: the vault is sealed", "failed: no such rack position", "error: sample not found at this step",
          "error: wrong order, the record is locked", "denied: the step needs a prior check",
          "error: device busy, alarm active"]


def fill(template: str, rng: random.Random) -> str:
    values = {name: rng.choice(options) for name, options in SLOTS.items()}
    values["other"] = rng.choice([f for f in SLOTS["freezer"] if f != values["freezer"]])
    values.update(sid=f"S-{rng.randint(1000, 9999)}", n=str(rng.randint(2, 8)), bay=str(rng.randint(1, 24)))
    return template.format(**values)


def variants(types: Sequence[TaskType], seed: int = 20250601) -> list[list[str]]:
    """Ten distinct variants of each type (the first SEEN are met, the rest held out)."""
    rng = random.Random(seed)
    out = []
    for kind in types:
        tasks: list[str] = []
        for _ in range(1000):
            task = fill(kind.template, rng)
            if task not in tasks:
                tasks.append(task)
            if len(tasks) == SEEN + HELD_OUT:
                break
        else:
            raise SystemExit(f"fewer than {SEEN + HELD_OUT} variants of {kind.template!r}")
        out.append(tasks)
    return out


_WORD = re.compile(r"[a-z]+")


def keyword_plan(task: str) -> list[str]:
    """The agent without lessons: the tools whose keyword the task names, in the order named."""
    plan: list[str] = []
    for word in _WORD.findall(task.lower()):
        for tool, words in TOOLS.items():
            if word in words and tool not in plan:
                plan.append(tool)
    return plan


def execute(expected: Sequence[str], plan: Sequence[str], rng: random.Random) -> tuple[list[dict[str, Any]], str]:
    """Run a plan in the world: each step's observation; the first wrong tool fails, and so does stopping short."""
    steps = []
    for index, tool in enumerate(plan):
        action = tool.replace("_", " ")
        if index < len(expected) and tool == expected[index]:
            steps.append({"tool": tool, "action": action, "observation": "ok"})
            continue
        steps.append({"tool": tool, "action": action, "observation": rng.choice(ERRORS)})
        return steps, "failure"
    if len(plan) < len(expected) or not plan:
        steps.append({"action": "stop", "observation": "error: the task is not finished"})
        return steps, "failure"
    return steps, "success"


def steps_tools(lesson: dict[str, Any]) -> tuple[str, ...]:
    """The tools of a lesson's steps (`tool: action`), in order."""
    return tuple(step.split(":", 1)[0] for step in lesson["steps"] if ":" in step)


def wrong_tool(expected: Sequence[str], index: int, rng: random.Random) -> str:
    return rng.choice([t for t in TOOLS if t != expected[index] and t not in expected])


@dataclass(frozen=True)
class Scripted:
    """A scripted trajectory as posted."""

    kind: int
    task: str
    steps: list[dict[str, Any]]
    outcome: str


class Run:
    """The scripted world, its trajectories and the agent, against the API."""

    def __init__(self, http: httpx.Client, types: Sequence[TaskType], agent: str, seed: int) -> None:
        self.http = http
        self.types = types
        self.agent = agent
        self.tasks = variants(types)
        self.rng = random.Random(seed)  # the scripted trajectories: the same in every run
        self.agent_rng = random.Random(seed + 1)  # the agent's tasks and the errors it meets
        self.type_of: dict[str, int] = {}  # trajectory id → its type
        self.log: list[Scripted] = []  # the scripted trajectories, in order

    def post(self, kind: int, task: str, steps: list[dict[str, Any]], outcome: str,
             lessons_used: Sequence[str] = ()) -> dict[str, Any]:
        response = self.http.post("/v1/trajectories", json={"agent_id": self.agent, "task": task, "steps": steps,
                                                           "outcome": outcome, "lessons_used": list(lessons_used)})
        response.raise_for_status()
        made = response.json()
        self.type_of[made["id"]] = kind
        return made

    def scripted(self, kind: int, misleading: bool) -> int:
        """Post the round's scripted trajectories of a type; return how many."""
        expected = self.types[kind].tools
        seen = self.tasks[kind][:SEEN]
        made = []
        if misleading:  # mislabelled: reported as a success, with a wrong tool somewhere
            plan = list(expected)
            plan[self.rng.randrange(len(plan))] = wrong_tool(expected, 0, self.rng)
            made.append(Scripted(kind, self.rng.choice(seen), [{"tool": t, "action": t.replace("_", " "),
                                                                "observation": "ok"} for t in plan], "success"))
        made.append(Scripted(kind, self.rng.choice(seen), *execute(expected, expected, self.rng)))
        index = self.rng.randrange(len(expected))
        wrong = list(expected[:index]) + [wrong_tool(expected, index, self.rng)]
        made.append(Scripted(kind, self.rng.choice(seen), *execute(expected, wrong, self.rng)))
        for trajectory in made:
            self.post(kind, trajectory.task, trajectory.steps, trajectory.outcome)
        self.log += made
        return len(made)

    def lessons(self, task: str, k: int = 3) -> list[dict[str, Any]]:
        response = self.http.get("/v1/lessons", params={"agent_id": self.agent, "task": task, "limit": k})
        response.raise_for_status()
        return response.json()["items"]

    def plan(self, task: str, use_lessons: bool) -> tuple[list[str], dict[str, Any] | None, list[dict[str, Any]]]:
        """The agent's plan for a task, the lesson it follows (if any), and the lessons it was served."""
        served = self.lessons(task) if use_lessons else []
        follow = next((lesson for lesson in served if lesson["steps"]), None)
        if follow is not None:
            return list(steps_tools(follow)), follow, served
        avoid = {tool for lesson in served if lesson["polarity"] == "failure" for tool in lesson["tools"]}
        return [t for t in keyword_plan(task) if t not in avoid], None, served

    def attempt(self, kind: int, task: str, use_lessons: bool, report: bool) -> tuple[bool, list[dict[str, Any]]]:
        plan, follow, served = self.plan(task, use_lessons)
        steps, outcome = execute(self.types[kind].tools, plan, self.agent_rng)
        if report:
            self.post(kind, task, steps, outcome, [follow["id"]] if follow else [])
        return outcome == "success", served

    def lesson_type(self, lesson: dict[str, Any]) -> int | None:
        kinds = Counter(self.type_of.get(ref["id"]) for ref in lesson["provenance"]["derived_from"])
        kinds.pop(None, None)
        return kinds.most_common(1)[0][0] if kinds else None

    def right(self, lesson: dict[str, Any], kind: int) -> bool:
        """A lesson of the task's own type (by lineage) whose steps, if it has any, are the right ones."""
        return self.lesson_type(lesson) == kind and (not lesson["steps"] or steps_tools(lesson) == self.types[kind].tools)

    def all_lessons(self, status: str) -> list[dict[str, Any]]:
        out, cursor = [], None
        while True:
            params = {"agent_id": self.agent, "status": status, "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.http.get("/v1/lessons", params=params).json()
            out += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return out


def distill(http: httpx.Client, runtime: Runtime, agent: str) -> tuple[float, float, dict[str, int]]:
    """Ask for a distillation through the API and run it here, as a worker runs it; return (seconds, seconds
    spent embedding, counts)."""
    response = http.post(f"/v1/agents/{agent}/distill", json={"engine": "heuristic"})
    response.raise_for_status()
    embedding = runtime.embedder.seconds  # type: ignore[attr-defined]
    started = time.perf_counter()
    result = run_distillation(runtime.pool, job_id=uuid.UUID(response.json()["job_id"]), embedder=runtime.embedder,
                              settings=runtime.settings, llm=None)
    seconds = time.perf_counter() - started
    if result["state"] != "succeeded":
        raise SystemExit(f"distillation failed: {result}")
    return seconds, runtime.embedder.seconds - embedding, result["counts"]  # type: ignore[attr-defined]


def evaluate(run: Run, use_lessons: bool) -> dict[str, Any]:
    """The agent on every held-out variant (nothing reported), the precision@3 of the lessons served, and why
    each miss missed."""
    wins, precision, hits, misses = 0, [], 0, Counter()
    for kind in range(len(run.types)):
        for task in run.tasks[kind][SEEN:]:
            plan, follow, served = run.plan(task, use_lessons)
            success = execute(run.types[kind].tools, plan, run.agent_rng)[1] == "success"
            wins += success
            if use_lessons:
                precision.append(sum(run.right(lesson, kind) for lesson in served[:3]) / 3)
                hits += any(lesson["steps"] and run.right(lesson, kind) for lesson in served[:3])
                if not success:
                    misses[("no lesson with steps" if follow is None
                            else "followed another type's lesson" if run.lesson_type(follow) != kind
                            else "followed wrong steps of its own type")] += 1
    n = len(run.types) * HELD_OUT
    return {"success_rate": wins / n, "precision_at_3": sum(precision) / n if precision else None,
            "right_steps_in_top_3": hits / n if precision else None, "misses": dict(misses)}


def census(run: Run) -> dict[str, Any]:
    served = run.all_lessons("served")
    by_type = Counter(run.lesson_type(lesson) for lesson in served)
    counts = [by_type.get(kind, 0) for kind in range(len(run.types))]
    retired = run.all_lessons("retired")
    wrong = [lesson for lesson in served + retired if lesson["steps"]
             and steps_tools(lesson) != run.types[run.lesson_type(lesson)].tools]
    return {"served": len(served), "per_type_mean": sum(counts) / len(counts), "per_type_max": max(counts),
            "by_polarity": dict(Counter(lesson["polarity"] for lesson in served)), "retired": len(retired),
            "wrong_served": sum(1 for lesson in wrong if lesson["status"] != "retired"),
            "wrong_retired": sum(1 for lesson in wrong if lesson["status"] == "retired"),
            "wrong_retired_after_uses": sorted(lesson["uses"] for lesson in wrong if lesson["status"] == "retired")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lessons", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 task types, 3 rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--home", default="/tmp/mc-bench-lessons", help="the embedded stack's folder")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    args = parser.parse_args(argv)
    types = TYPES[:6] if args.quick else TYPES
    rounds = 3 if args.quick else args.rounds
    report = Report("lessons" + ("-quick" if args.quick else ""))
    report.figures["machine"] = machine_state()
    report.say(f"# Lessons ({len(types)} task types × {SEEN + HELD_OUT} variants, {rounds} rounds)\n"
               f"machine: {report.figures['machine']}\n")
    bench = Bench.start(Path(args.home), keep=args.keep)
    try:
        url = bench.new_database("lessons")
        server = bench.serve(url, distill_after_trajectories=0, distill_engine="heuristic")
        settings = bench.settings(url, distill_after_trajectories=0, distill_engine="heuristic")
        runtime = open_runtime(settings, embedder=load_embedder())
        try:
            with server.client(server.new_key(TENANT)) as http:
                scripted = rounds_of(report, http, runtime, types, rounds)
                retirement(report, http, runtime, types)
        finally:
            runtime.close()
        llm_engine(report, bench, types, scripted)
    finally:
        bench.close()
        report.save()
    return 0


def rounds_of(report: Report, http: httpx.Client, runtime: Runtime, types: Sequence[TaskType],
              rounds: int) -> list[list[Scripted]]:
    """The main experiment; return the scripted trajectories of each round, for the LLM engine's run."""
    run = Run(http, types, agent="keeper", seed=7)
    baseline = evaluate(run, use_lessons=False)
    rows: list[list[Any]] = [[0, 0, 0, "-", "-", "-", "-", "-", baseline["success_rate"], "-", "-"]]
    total, seconds, embedding, distilled, figures, scripted = 0, 0.0, 0.0, 0, [], []
    for number in range(1, rounds + 1):
        start = len(run.log)
        for kind in range(len(types)):
            total += run.scripted(kind, misleading=number == 1 and kind < MISLEADING_TYPES)
        scripted.append(run.log[start:])
        spent, embedded, counts = distill(http, runtime, run.agent)
        seconds += spent
        embedding += embedded
        distilled += counts["trajectories"]
        agent_wins = 0
        for kind in range(len(types)):
            won, _ = run.attempt(kind, run.agent_rng.choice(run.tasks[kind][:SEEN]), use_lessons=True,
                                 report=True)
            agent_wins += won
        total += len(types)
        result, state = evaluate(run, use_lessons=True), census(run)
        rows.append([number, total, state["served"], state["per_type_mean"], state["per_type_max"],
                     f"{state['wrong_served']} / {state['wrong_retired']}", result["precision_at_3"],
                     result["right_steps_in_top_3"], result["success_rate"], agent_wins / len(types),
                     counts["trajectories"] / spent])
        figures.append({"round": number, "trajectories": total, "distill": counts, "distill_seconds": spent,
                        "agent_seen_success": agent_wins / len(types), **result, **state})
    report.table(["round", "trajectories", "lessons served", "per type (mean)", "per type (max)",
                  "wrong lessons served / retired", "precision@3", "right steps in top 3", "held-out success",
                  "seen success (agent)", "distilled/s"], rows,
                 title="## Rounds (round 0: the agent without lessons)")
    for entry in figures:
        report.say(f"Round {entry['round']}: held-out misses by cause: {entry['misses'] or 'none'}")
    report.say(f"Heuristic distillation: {distilled} trajectories in {seconds:.1f} s "
               f"({distilled / seconds:.1f} trajectories/s, in process; {embedding / seconds:.0%} of the time "
               f"embedding situations with MiniLM).\n")
    report.figures.update(baseline=baseline, rounds=figures, distill_seconds=seconds, distilled=distilled,
                          embed_seconds=embedding)
    return scripted


def retirement(report: Report, http: httpx.Client, runtime: Runtime, types: Sequence[TaskType]) -> None:
    """An agent of its own whose only lesson is wrong: how many uses until it is no longer served."""
    run = Run(http, types, agent="planted", seed=11)
    kind = 0
    expected = types[kind].tools
    plan = [expected[0], wrong_tool(expected, 1, run.rng), *expected[2:]]
    steps = [{"tool": t, "action": t.replace("_", " "), "observation": "ok"} for t in plan]
    run.post(kind, run.tasks[kind][0], steps, "success")
    distill(http, runtime, run.agent)
    [wrong] = run.all_lessons("served")
    attempts = []
    for task in run.tasks[kind][1:SEEN]:
        followed = run.plan(task, use_lessons=True)[1]
        if followed is None or followed["id"] != wrong["id"]:
            break
        won, _ = run.attempt(kind, task, use_lessons=True, report=True)
        attempts.append(won)
    [retired] = [lesson for lesson in run.all_lessons("retired") if lesson["id"] == wrong["id"]]
    history = http.get(f"/v1/memories/{wrong['id']}/history").json()["items"]
    report.say(f"## A deliberately wrong lesson\nA success lesson with a wrong tool at step 2 "
               f"({' → '.join(plan)}), the agent's only lesson: it followed it {len(attempts)} times "
               f"(successes: {sum(attempts)}); it retired after {retired['uses']} uses (utility "
               f"{retired['utility']}, MEMCUBE_LESSON_MIN_USES={runtime.settings.lesson_min_uses}, "
               f"MEMCUBE_LESSON_RETIRE_BELOW={runtime.settings.lesson_retire_below}) and was not served again; "
               f"its history has {len(history)} versions.\n")
    report.figures["wrong_lesson"] = {"followed": len(attempts), "successes": sum(attempts),
                                      "uses_at_retirement": retired["uses"], "utility": retired["utility"],
                                      "versions": len(history)}


# --- the LLM engine against the local stub --------------------------------------------------------------------

SHOWN = re.compile(r"^\[(\d+)\]( \(earlier\))? Task: (.*) \(outcome: (\w+)", re.MULTILINE)
STEP = re.compile(r"^    \d+\. (?:(\w+): )?(.*?)(?: \(thought: .*\))?(?: → (.*))?$")
KNOWN = re.compile(r"^(L\d+) \((\w+), used \d+ times, utility [\d.]+\): (.*)$", re.MULTILINE)


def stub_answer(request: Request) -> str:
    """The stub LLM: a lesson per new trajectory shown, its situation the task with its values masked, merged
    into a lesson shown of the same polarity and situation; a failure lesson avoids the step that failed."""
    prompt = request.prompt
    known = KNOWN.findall(prompt)
    blocks = re.split(r"^(?=\[\d+\])", prompt.split("\nTrajectories:\n", 1)[1], flags=re.MULTILINE)
    lessons = []
    for block in blocks:
        head = SHOWN.match(block)
        if head is None or head.group(2):
            continue
        number, task, outcome = int(head.group(1)), head.group(3), head.group(4)
        steps = [STEP.match(line) for line in block.splitlines()[1:] if line.startswith("    ") and ". " in line]
        steps = [m for m in steps if m]
        when = mask(task)
        if outcome == "success":
            tools = [m.group(1) for m in steps if m.group(1)]
            label = next((lb for lb, pol, text in known if pol == "success" and text.startswith(f"When {when}:")),
                         None)
            lessons.append({"polarity": "success", "when_to_use": when, "tools": tools, "evidence": [number],
                            "steps": [f"{m.group(1)}: {m.group(2)}" if m.group(1) else m.group(2) for m in steps],
                            "merge_into": label})
        elif outcome == "failure" and steps:
            bad = steps[-1]
            avoid = (f"{bad.group(1)}: {bad.group(2)}" if bad.group(1) else bad.group(2)) + \
                (f" (it gave: {bad.group(3)})" if bad.group(3) else "")
            label = next((lb for lb, pol, text in known if pol == "failure" and text.startswith(f"Avoid: {avoid}")),
                         None)
            lessons.append({"polarity": "failure", "when_to_use": when, "avoid": avoid, "evidence": [number],
                            "tools": [bad.group(1)] if bad.group(1) else [], "merge_into": label})
    return json.dumps({"lessons": lessons})


def llm_engine(report: Report, bench: Bench, types: Sequence[TaskType], rounds: list[list[Scripted]]) -> None:
    """The same scripted trajectories, round by round, distilled by the LLM engine against the local stub."""
    stub = LLMServer().start()
    stub.reset(stub_answer)
    url = bench.new_database("lessons_llm")
    settings = bench.settings(url, distill_after_trajectories=0, distill_engine="llm", llm_base_url=stub.url,
                              llm_model="stub")
    runtime = open_runtime(settings, embedder=load_embedder())
    llm = OpenAILLM(base_url=stub.url, api_key=None, model="stub", timeout=30, max_retries=0)
    totals: Counter[str] = Counter()
    seconds = 0.0
    try:
        for batch in rounds:
            with runtime.pool.connection() as conn:
                for t in batch:
                    body = TrajectoryCreate(agent_id="keeper", task=t.task, steps=t.steps, outcome=t.outcome)
                    record_trajectory(conn, tenant=TENANT, actor="bench", body=body, embedder=runtime.embedder,
                                      settings=settings)
                job, _ = enqueue_distillation(conn, tenant=TENANT, agent_id="keeper", user_id=None, trigger="api",
                                              engine="llm")
            started = time.perf_counter()
            result = run_distillation(runtime.pool, job_id=job["id"], embedder=runtime.embedder, settings=settings,
                                      llm=llm)
            seconds += time.perf_counter() - started
            if result["state"] != "succeeded":
                raise SystemExit(f"LLM distillation failed: {result}")
            with runtime.pool.connection() as conn:
                row = conn.execute("SELECT llm_calls, tokens_in, tokens_out FROM jobs WHERE id = %s",
                                   (job["id"],)).fetchone()
            totals.update({**result["counts"], **row})
        with runtime.pool.connection() as conn:
            served = conn.execute("SELECT count(*) AS n FROM memcubes WHERE tenant = %s AND kind = 'procedural' "
                                  "AND status = 'active'", (TENANT,)).fetchone()["n"]
    finally:
        runtime.close()
        stub.stop()
    n = totals["trajectories"]
    report.table(["engine", "trajectories", "LLM calls", "calls/trajectory", "tokens in/trajectory",
                  "tokens out/trajectory", "trajectories/s (stub answers at once)", "lessons added / merged",
                  "lessons"],
                 [["llm (stub)", n, totals["llm_calls"], totals["llm_calls"] / n, totals["tokens_in"] / n,
                   totals["tokens_out"] / n, n / seconds, f"{totals['added']} / {totals['merged']}", served]],
                 title="## LLM engine against the local stub (the scripted trajectories of every round)")
    report.figures["llm"] = {**totals, "seconds": seconds, "lessons": served,
                             "calls_per_trajectory": totals["llm_calls"] / n,
                             "tokens_in_per_trajectory": totals["tokens_in"] / n,
                             "tokens_out_per_trajectory": totals["tokens_out"] / n}


if __name__ == "__main__":
    raise SystemExit(main())
