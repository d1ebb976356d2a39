"""The hub's HTTP API, one ``APIRouter`` per resource; ``ouie.hub.api.create_app`` includes them.

Every route carries exactly one access rule (``deps.access``): ``public``, ``authenticated``,
``sensor`` (a per-sensor ingest token) or one permission from ``ouie.hub.auth.Perm``. The guard
enforces it and the OpenAPI document shows it as ``x-ouie-access``; tests walk ``app.routes``
and check each rule with every role. Every handler declares a pydantic response model, so the
OpenAPI document describes each response and schemathesis checks the shapes.
"""
