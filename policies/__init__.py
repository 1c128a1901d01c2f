"""Dispatching policies behind one predict() protocol (not yet implemented: see the open issues)."""
