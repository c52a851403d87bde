"""The Optuna tuner: measures a template's configs in a real browser and records the fastest."""
