"""The dashboard's pages, one module each: ``PATH``, ``NAV`` (the text key of its menu entry),
``layout(lang, **query)`` and ``register_callbacks(app)``."""
