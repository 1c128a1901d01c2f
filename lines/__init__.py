"""Production-line building blocks for the engine: parts, stations, transport, workers."""
