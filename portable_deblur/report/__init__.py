"""Report stage: ``write_report`` -- the Pareto CSV and plot, latency against resolution, and ``report.html``."""
