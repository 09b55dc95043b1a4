"""The live site: HTTP with deadlines and limits (site, deadline), the crawl, the TLS probe,
the lab browser and its vitals, and the Chrome UX Report.

Imports: rules/ and the ground. Nothing here uses AWS.
"""
