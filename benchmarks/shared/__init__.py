"""What the benchmarks of every stage share: files made readable by an older checkout for before/after runs."""
