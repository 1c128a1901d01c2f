"""Tier presets as YAML data files (see twin.config.tiers)."""
