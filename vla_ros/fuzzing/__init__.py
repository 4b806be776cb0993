"""Live fuzzing of the running graph: malformed messages on every input topic, a command monitor, RSS."""
