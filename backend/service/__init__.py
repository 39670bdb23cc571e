"""The strategy service: the long-running process that trades (docs/trading.md).

`python -m backend.service` runs it; `... health` is the container's health check. It is
the ledger's only writer. Settings come from the environment (settings.py), read once.
"""
