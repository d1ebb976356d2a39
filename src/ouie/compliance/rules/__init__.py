"""The rules of ``ouie check``, one module per family; ``ouie.compliance.findings.RULES``
lists every rule id, ``ouie.compliance.roles`` says which families apply to which role."""
