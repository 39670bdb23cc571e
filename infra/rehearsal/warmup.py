"""The deploy step's fixed costs, paid while the steps before it wait.

Before the program declares its first resource, the deploy step pays for work that does
not depend on its inputs:
- importing the program's modules, and pulumi_aws's module for each AWS service it uses
  (pulumi_aws loads them lazily, on first attribute access: ec2 alone is ~0.7 s);
- moto_server importing each service's backend on that service's first request (ec2
  alone is ~1.9 s, in moto_server's process).

Both run here in threads, each started as soon as it can: the imports when the rehearsal
starts, so they overlap the config and package steps and the emulator's start; the
wake-up when the emulator answers, so moto_server loads its backends on the other core
while this process imports. Best effort: a failure here is the deploy step's to report.

The imports must finish before the program runs (`Background.join`): pulumi_aws's lazy
module swaps its own class before it loads, so another thread reading an attribute of a
half-loaded module would get an AttributeError, not a wait.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.rehearsal.clients import EmulatorClients

# Each AWS service the program deploys to: a cheap read that makes moto_server load its
# backend, and the pulumi_aws module that declares its resources.
SERVICES = (
    ("s3", "list_buckets", "s3"),
    ("lambda", "list_functions", "lambda_"),
    ("iam", "list_roles", "iam"),
    ("dynamodb", "list_tables", "dynamodb"),
    ("logs", "describe_log_groups", "cloudwatch"),
    ("events", "list_rules", "cloudwatch"),
    ("ec2", "describe_vpcs", "ec2"),
    ("ecs", "list_clusters", "ecs"),
    ("ecr", "describe_repositories", "ecr"),
    ("cloudwatch", "describe_alarms", "cloudwatch"),
    ("sns", "list_topics", "sns"),
    ("secretsmanager", "list_secrets", "secretsmanager"),
)


class Background:
    """One best-effort job in a daemon thread: exceptions are dropped, never raised."""

    def __init__(self, job: Callable[..., None], *args: Any) -> None:
        self._thread = threading.Thread(
            target=self._quietly, args=(job, *args), name=f"warm-up {job.__name__}", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _quietly(job: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(Exception):
            job(*args)

    def join(self) -> None:
        self._thread.join()


def imports(project_dir: Path) -> None:
    """Import what the program's `__main__.py` imports, then load pulumi_aws's module for
    each service in SERVICES."""
    tree = ast.parse((project_dir / "__main__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            with contextlib.suppress(Exception):
                importlib.import_module(node.module)
    import pulumi_aws

    for module in dict.fromkeys(module for _, _, module in SERVICES):
        # Any attribute but the introspection ones (__name__, __dict__...) loads it.
        getattr(getattr(pulumi_aws, module), "__all__", None)


def wake(aws: EmulatorClients) -> None:
    """Create the program's clients (kept by `aws` for the deploy step) and send each of
    moto_server's services its first request."""
    for service, operation, _ in SERVICES:
        with contextlib.suppress(Exception):
            getattr(aws.client(service), operation)()
