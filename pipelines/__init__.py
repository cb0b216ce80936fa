"""Prefect flows: thin wrappers over the personas library."""
