"""What a run writes: the JSON report, its HTML page, history, trends, the cadence ledger,
merges of shards and the evidence bundle."""
