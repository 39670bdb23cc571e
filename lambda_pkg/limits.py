"""AWS Lambda limits the packager and uploader check against.

Source: the AWS Lambda quotas page. The seed guide's "70 MB" is the base64-encoded
request limit for that same 50 MiB zip, not a separate limit.
"""

# A zip uploaded directly with the function (CreateFunction/UpdateFunctionCode ZipFile).
DIRECT_UPLOAD_ZIPPED_MAX = 50 * 1024 * 1024
# Function code plus all its layers, unzipped.
UNZIPPED_MAX = 262_144_000
# Where the report starts to warn that the package is getting close to a limit.
WARN_FRACTION = 0.8
# The one list of Lambda targets the project supports (infra/config.py reads it too):
# each Python runtime Lambda still supports, with the glibc of its Amazon Linux base
# (python3.9 and 3.10 are deprecated by Lambda and are refused).
RUNTIME_GLIBC = {
    "python3.11": (2, 26),
    "python3.12": (2, 34),
    "python3.13": (2, 34),
}
RUNTIMES = tuple(RUNTIME_GLIBC)
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_RUNTIME = "python3.12"
DEFAULT_ARCHITECTURE = "x86_64"
DEFAULT_HANDLER_FILE = "aws/market_data_fetcher.py"
