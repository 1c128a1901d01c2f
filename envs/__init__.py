"""Gymnasium environments over the line engine (not yet implemented: see the open issues)."""
