"""Adapters the examples share: glue a caller writes between the library and a tool."""
