"""Named random streams: one seed -> a ``numpy.random.SeedSequence`` -> a ``Generator`` per name.

A stream is identified by the replication number and a tuple of names (station, purpose, ...), hashed
stably (CRC-32), not by creation order. So adding a station or changing one station's parameters does
not shift the random numbers any other station sees: compared variants share random numbers (common
random numbers), and the same seed gives the same numbers on any executor.
"""

from __future__ import annotations

import zlib

import numpy as np


class Streams:
    """Factory of named, independent random generators for one replication."""

    def __init__(self, seed: int, replication: int):
        self.seed = seed
        self.replication = replication

    def generator(self, *names: str) -> np.random.Generator:
        """The generator for ``names`` (e.g. ``("printer", "process", "phone")``)."""
        key = (self.replication,) + tuple(zlib.crc32(n.encode("utf-8")) for n in names)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))
