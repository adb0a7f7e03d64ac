"""Thin adapters between HTTP libraries and the core: one module per library family."""
