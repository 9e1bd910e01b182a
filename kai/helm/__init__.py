"""Helm: the chart generator, the Go-template engine, the helm runner and chart loading."""
