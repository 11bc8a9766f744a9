"""Account storage: the Protocols (`base`), `MemoryStore` (`memory`), `SQLStore` (`sql`).

Apps import these names from `bpart_auth`; `SQLStore` is loaded lazily there, so
`import bpart_auth` never imports SQLAlchemy.
"""
