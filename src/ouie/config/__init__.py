"""Configuration trees, one per role, from YAML plus ``OUIE_*`` environment variables."""
