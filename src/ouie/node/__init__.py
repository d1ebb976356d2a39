"""The edge node: capture → features → classify → privacy guard → events → publish."""
