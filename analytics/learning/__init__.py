"""Professional-learning evaluation on Guskey's five levels, and the restorative-practices nexus (DESIGN §10)."""
