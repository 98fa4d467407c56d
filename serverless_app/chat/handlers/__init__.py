"""Lambda entry points: event → service → response. One module per function."""
