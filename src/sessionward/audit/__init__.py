"""The black-box auditor: checks another site's session management from outside.

Apart from the rest of sessionward (it imports only ``errors`` and the version from it), so
it can audit any site. The command is ``sessionward audit`` (docs/audit.md); from Python:

* :func:`sessionward.audit.runner.run_audit` and :func:`~sessionward.audit.runner.plan`,
  with :class:`~sessionward.audit.context.Options` and a scenario from
  :func:`sessionward.audit.scenario.load_scenario`;
* the reports: :mod:`sessionward.audit.output` (JSON, SARIF) and
  :mod:`sessionward.audit.html_report`;
* the token analysis alone: :func:`sessionward.audit.sequencer.analyse_tokens`, and the FIPS
  140-2 battery in :mod:`sessionward.audit.randomness` (standard library only).

Nothing is imported here, so the randomness battery needs no third-party package; the rest
needs the ``audit`` extra (httpx, and rich for the command).
"""
