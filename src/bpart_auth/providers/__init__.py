"""Identity providers: one module each, behind the `Provider` Protocol (`base`)."""
