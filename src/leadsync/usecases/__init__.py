"""Use cases: what the service does, as plain functions the HTTP routes and the CLI share.

Each takes the database handles (and settings) it needs and returns a shape of
`usecases/schemas.py`; none knows about HTTP or the terminal.
"""
