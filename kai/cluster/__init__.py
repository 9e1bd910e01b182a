"""The cluster: the client, the stages of `kai apply` (preflight, dry run, diff, apply), the rollout watch."""
