"""Datasets: recorded episodes as fixed-rate frames, and LeRobotDataset v3.0 written and read."""
