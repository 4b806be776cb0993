"""Learning from demonstrations: the built-in VLA, its data and its training."""
