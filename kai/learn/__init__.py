"""The learning side door: `kai explain` and `kai critique`."""
