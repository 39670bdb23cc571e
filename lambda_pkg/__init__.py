"""Build, verify, upload and operate the trading bot's Lambda package."""

__version__ = "1.0.0"
# Goes into the input hash and the object metadata: bump it whenever a change
# to the builder would change the bytes of a package built from the same inputs.
BUILDER_VERSION = "lambda_pkg/1"
