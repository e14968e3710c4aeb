"""The improvement workspace (DESIGN §9): School Performance Plan goals and their progress, PDSA cycles
and ramps, root causes, walkthroughs, and what changed since the last data meeting.

Pure functions over DataFrames (`goals`, `cycles`, `notes`, `changes`) plus the one module that writes
workspace records with who/when history and optimistic concurrency (`records`).
"""
