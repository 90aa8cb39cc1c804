"""Test helpers shared by test modules: adapter factories, layouts, tiny pipelines, the CLI runner."""
