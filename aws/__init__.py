"""AWS Lambda entry points for the trading bot. Handlers here are thin adapters over backend/."""
