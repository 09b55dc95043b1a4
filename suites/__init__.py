"""The built-in controls, shipped as the package `edgeaudit.suites` (the checkout keeps them here).

Being a package gives each module a name of its own (`edgeaudit.suites.test_tls` once installed,
`suites.test_tls` in the checkout), so a user's own suites/test_tls.py beside them does not clash."""
