"""Model files: where they live, and proof (sha256) that they are the ones we expect."""
