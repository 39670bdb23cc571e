"""The operator CLI: upload a package to S3, and see, roll back, invoke and watch
the deployed function. `python -m ops --help`; docs/operations.md."""
