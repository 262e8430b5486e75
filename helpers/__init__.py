"""What the notebooks use but students do not write: data, training loops, plots,
widgets and metrics. Nothing here answers a notebook's exercise."""
