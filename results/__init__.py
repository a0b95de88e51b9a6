"""The run directory (the one place that knows file names) and the report writers."""
