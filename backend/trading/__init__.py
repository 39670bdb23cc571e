"""The trading core: strategies, risk limits, orders, brokers, the ledger and the backtester.

Pure Python. Nothing here imports boto3 or a broker SDK at module level: the DynamoDB
ledger and the Alpaca broker import theirs when they are constructed, so a backtest, a
test or `parse_trading_config` at `pulumi preview` needs neither (docs/trading.md).
"""
