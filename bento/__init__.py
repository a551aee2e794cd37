"""The har-clip BentoML service and the code that packages, serves and containerises it (no ZenML imports)."""
