"""A plugin module whose import fails."""

raise RuntimeError("the toy plugin exploded on import")
