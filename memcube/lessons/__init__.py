"""Procedural memory: trajectories of an agent become lessons (procedural cubes) with a utility, served by
situation, retired when they keep failing.

trajectory.py takes trajectories in; distill.py runs a distillation job (heuristic.py and llm_engine.py are
its two engines, ledger.py the pure bookkeeping of one batch, evidence.py the check every candidate passes);
trigger.py decides when one is queued; lesson.py is what a lesson holds; utility.py is η and retirement,
feedback.py counts uses; serve.py ranks lessons for a task.
"""
