"""YueTwin: a discrete-event digital twin of production lines for smart-factory upgrade decisions."""

__version__ = "0.1.0"
