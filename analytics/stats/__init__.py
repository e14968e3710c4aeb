"""Statistics: rates and pooling, gaps, status and change, disproportionality, RP impact, run charts."""
