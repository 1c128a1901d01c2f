"""The YueTwin dashboard (Dash): maturity comparison, line, what-if and runs pages over the results store.
Start it with ``twin dashboard``; build it in code with :func:`dashboards.app.create_app`."""
