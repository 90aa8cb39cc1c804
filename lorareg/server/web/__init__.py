"""The web UI: page routes, view models and reviewer sessions."""
