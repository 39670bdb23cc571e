"""The local cloud: emulated AWS on this machine, for the rehearsal, the tests and
`scripts/deploy.sh --local`. Not infrastructure: nothing here is deployed.

emulator   moto_server on a free port (the plain emulator)
control    up / find / down a background local cloud (CloudSettings, ensure_running, stop)
cli        python -m localcloud up|status|env|fire|down|serve
daemon     the background process: moto_server, the front, the runner, the ticker
front      the HTTP front before moto_server: serves Lambda Invoke, forwards the rest
registry   what the front learns from control-plane calls (code locations, LoggingConfig)
invoke_api the Invoke request and Lambda's error answers
functions  which version and configuration an invocation runs
runner     Invoke: environments, concurrency, async retries, logs
environment, runtime_api, capture, spawner   one execution environment under awslambdaric
runtimes   the target Python and the runtime directory (awslambdaric, boto3)
code       a version's code by its pinned S3 version, sha256-checked and unpacked
treecache  trees unpacked once by content digest, sealed and read-only (also the rehearsal's)
lambda_logs Lambda's log lines and stream names; writing them to CloudWatch Logs
schedule   firing EventBridge rules (on demand, or on a compressed clock)
state      the state file of a running cloud
"""
