"""The pytest wiring of a run: the run object (run), options, collection (a control per
target), outcomes (reports to results), the fixtures, the scope, the release of what pytest
keeps, and the JUnit and pytest-html views.

Imports: every floor below (demo/ only when `--demo` asks for it). Only plugin.py and cli.py
import this floor.
"""
