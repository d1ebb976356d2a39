"""Runtime privacy guards the node needs: speech guard, message-content guard, log scrubbing.

Only core and config below it; the compliance tooling (``ouie check``, ``ouie dpia``,
``ouie eval privacy``) is ``ouie.compliance``, above the node and the hub."""
