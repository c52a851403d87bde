"""Tuning records: best config per (workload, backend, device class), lookup with fallback."""
