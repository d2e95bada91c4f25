"""Sleep-time consolidation: episodes of a scope become facts and session summaries with their lineage.

ledger.py holds the pure decisions, heuristic.py and llm_engine.py the two engines (the heuristic one reads
facts with extract.py, values.py and lexicon.py, over the sentences text.py finds), run.py runs a job,
trigger.py decides when one is queued.
"""
