"""Batch inference: every image and video below a folder scored by one export, as a table of predictions."""
