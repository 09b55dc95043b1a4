"""The config and the rules it names: the config file and its checks (config), thresholds and
limits, the catalog of controls read from the suites, the procedures' schedule, shards,
frameworks, attestations, `s3://` locations, and the TOML writer.

Imports: the ground only (errors, evidence, redact). Nothing here makes a network call.
"""
