"""What a run writes: the result record (results, resultstore), the JSON report, its HTML page,
OCSF and CSV exports, history and its store, trends, the cadence ledger, merges of shards, the
archive and the evidence bundle.

Imports: checks/, aws/, web/, rules/ and the ground.
"""
