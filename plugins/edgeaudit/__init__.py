"""edgeaudit: compliance controls for static sites on S3 + CloudFront, as a pytest plugin.

The public API for people writing their own controls (in `./suites/`) is what follows; every
other module is the plugin's own and may move between releases.

- The marker: `@pytest.mark.control("EA-XXX-NN", severity="P1".."P4", frameworks={...},
  reads=("service:Operation", ...))`, with the cadence markers (`daily`, `weekly`, `monthly`,
  `quarterly`, `dr`, `deploy`) and category markers of `markers.ini`.
- The fixtures (`edgeaudit.run.fixtures`): `target`, `edgeaudit_config`, `thresholds`, `aws`,
  `site`, `crawl`, `tls_probe`, `vitals`, `evidence`, `attestation`, `selected_controls`,
  `report_dir`, `history_location`, `run_history`.
- `edgeaudit.errors`: `NotEvaluated` (the control could not gather its data: an `error`
  outcome naming the cause), `AccessDeniedError`, `SiteUnreachable`, `ConfigError`.
- `edgeaudit.evidence`: `Evidence`, the `evidence` fixture's object (`record(key, value)`).
- `edgeaudit.checks.*`: the rules the built-in controls apply (policy evaluation, drills,
  drift, the Observatory score, cost, page weight, TTFB), to reuse in a control of your own.

The package is laid out in floors; a floor imports only the floors below it, never one beside
it or above (tests/test_layout.py holds the code to it):

    plugin.py, cli.py     the faces: pytest's entry point, the `edgeaudit` command
    run/                  the pytest wiring of a run
    demo/                 the embedded demo environment (the `demo` extra)
    reporting/            what a run writes, and the result record it is made of
    checks/               the rules controls apply
    aws/, web/            the two ways to reach a site: AWS reads, the live site
    rules/                the config and what it names: thresholds, catalog, schedule, shards
    errors.py, evidence.py, redact.py, filelock.py, interrupts.py   the ground
"""

__version__ = "0.1.0"
