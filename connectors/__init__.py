"""Connectors: one module per outside system, registered under the `syncd.connectors` entry point."""
