"""A broken recarena plugin (tests only)."""
