"""Dash dashboard pages (not yet implemented: see the open issues)."""
