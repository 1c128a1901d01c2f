"""``twin dashboard``: serve the Dash dashboard over a results store (see :mod:`dashboards`)."""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path
from typing import Optional

import typer

from twin.console import fail, out
from twin.store import DEFAULT_STORE, ResultStore, StoreError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(text: str) -> tuple[str, str]:
    """``USER:PASS`` as (user, password); both must be non-empty (the password may contain ``:``)."""
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError(f"--auth {text!r}: give USER:PASS with both parts, e.g. --auth trainer:s3cret")
    return user, password


def dashboard(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help="Results store (DuckDB file) to show."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on; other than this machine "
                             "(127.0.0.1, localhost, ::1) it needs --auth."),
    port: int = typer.Option(8050, "--port", min=1, max=65535, help="TCP port."),
    auth: Optional[str] = typer.Option(None, "--auth", metavar="USER:PASS",
                                       help="Require HTTP basic auth with this user and password."),
    workers: int = typer.Option(1, "--workers", min=1, help="Local processes running a what-if's replications."),
) -> None:
    """Serve the dashboard: maturity comparison, line (flow, states, Sankey, time series, Gantt), what-if
    and runs pages, in English or Chinese. Binds to 127.0.0.1 unless told otherwise."""
    credentials = None
    if auth is not None:
        try:
            credentials = parse_auth(auth)
        except ValueError as exc:
            fail([str(exc)])
    if not is_loopback(host) and credentials is None:
        fail([f"--host {host}: serving beyond this machine needs --auth USER:PASS (HTTP basic auth), "
              "e.g. --auth trainer:s3cret; or keep the default --host 127.0.0.1"])
    if not store.exists():
        fail([f"no results store at {store}; make one with `twin compare SCENARIO` or `twin run SCENARIO`, "
              "or pass --store PATH"])
    try:
        ResultStore(store).close()  # a file that is not a store, or a newer layout, fails here, not per page
    except StoreError as exc:
        fail([str(exc)])
    try:  # fail before building the app when the port is taken
        probe = socket.create_server((host.strip("[]"), port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        probe.close()
    except OSError as exc:
        fail([f"--host {host} --port {port}: cannot listen there ({exc.strerror}); pass another --port, "
              "or stop the program using it"])

    from dashboards.app import create_app

    app = create_app(store, credentials, workers)
    shown = f"[{host}]" if ":" in host else host
    out().print(f"YueTwin dashboard on http://{shown}:{port}/ showing {store} (Ctrl-C to stop)", highlight=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host=host, port=port, debug=False)
