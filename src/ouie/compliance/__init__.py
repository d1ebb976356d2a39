"""Compliance tooling above the node, the hub and eval: ``ouie check`` (``check`` and
``rules``), ``ouie dpia`` (``dpia``, ``pdf``, ``templates``) and ``ouie eval privacy``
(``leakage``, ``fswatch``). The runtime guards a node needs stay in ``ouie.privacy``."""
