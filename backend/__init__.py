"""The trading bot's core: market-data models, providers, analytics and storage.

Nothing here imports boto3, yfinance or pandas at module level (see docs/runtime.md).
"""
