"""The verification log: one row per event of a verification, its admin and dashboard."""
