"""The model client, its prompts, and what keeps secrets from it (redaction, anonymization)."""
