"""Export-stage benchmarks: each format against the host's arithmetic limit, int8 settings, graphs, profiles."""
