"""Data in and out: the schema, storage, import, the metric catalog and the demo district."""
