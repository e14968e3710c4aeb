"""Outputs: chart builders, the tables behind each view, findings, exports and meeting packs."""
