"""Who sees what: privacy suppression for public output and signed read-only links."""
