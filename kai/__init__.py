"""kai: an AI-assisted kubectl companion that never trusts generated YAML blindly."""

__version__ = "0.1.0"
