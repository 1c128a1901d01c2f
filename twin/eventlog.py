"""Columnar event log of part events and station state changes, streamed to Parquet or CSV.

Rows are gathered in column lists and written in chunks of ``chunk_rows`` through a streaming writer,
so memory stays bounded however long the run. Columns: replication, time (minutes), event
(queue/start/finish/scrap/rework/exit/release/reject/state), part (id, -1 for state rows), product,
station, server (-1 for part rows), state (for state rows: busy, setup, idle, blocked, down, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from lines.parts import Part

SCHEMA = pa.schema([
    ("replication", pa.int32()),
    ("time", pa.float64()),
    ("event", pa.string()),
    ("part", pa.int64()),
    ("product", pa.string()),
    ("station", pa.string()),
    ("server", pa.int32()),
    ("state", pa.string()),
])


class EventLog:
    """Streams events to ``path`` (``.parquet`` or ``.csv``)."""

    def __init__(self, path: Path, chunk_rows: int = 65_536):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise ValueError(f"event log '{path}': use a .parquet or .csv file name")
        self.chunk_rows = chunk_rows
        self.replication = 0
        self.rows = 0
        self._cols: list[list] = [[] for _ in SCHEMA]
        self._writer: Optional[pq.ParquetWriter | pacsv.CSVWriter] = None
        self._csv = suffix == ".csv"

    def part(self, time: float, event: str, part: "Part", station: str) -> None:
        c = self._cols
        c[0].append(self.replication)
        c[1].append(time)
        c[2].append(event)
        c[3].append(part.id)
        c[4].append(part.product.name)
        c[5].append(station)
        c[6].append(-1)
        c[7].append(None)
        if len(c[0]) >= self.chunk_rows:
            self.flush()

    def state(self, time: float, station: str, server: int, state: str) -> None:
        c = self._cols
        c[0].append(self.replication)
        c[1].append(time)
        c[2].append("state")
        c[3].append(-1)
        c[4].append(None)
        c[5].append(station)
        c[6].append(server)
        c[7].append(state)
        if len(c[0]) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._cols[0]:
            return
        table = pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(self._cols, SCHEMA)],
                                     schema=SCHEMA)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = (pacsv.CSVWriter(str(self.path), SCHEMA) if self._csv
                            else pq.ParquetWriter(str(self.path), SCHEMA))
        self._writer.write_table(table)
        self.rows += table.num_rows
        self._cols = [[] for _ in SCHEMA]

    def close(self) -> None:
        """Write what is left and close the file (an empty log still gets its header)."""
        self.flush()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            empty = SCHEMA.empty_table()
            if self._csv:
                pacsv.write_csv(empty, str(self.path))
            else:
                pq.write_table(empty, str(self.path))
        else:
            self._writer.close()
            self._writer = None
