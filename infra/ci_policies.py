"""Trust and permission documents for the CI roles, as pure functions returning dicts.

Two callers assume these roles without any stored key:
- GitHub Actions, through GitHub's OIDC provider (`token.actions.githubusercontent.com`);
- Pulumi Deployments, through Pulumi Cloud's OIDC provider (`api.pulumi.com/oidc`).

Each trust statement pins the audience AND lists exact subjects with StringEquals, never
StringLike with `*`: a wildcard subject such as `repo:owner/repo:*` would let any branch,
tag or pull request of the repository assume the role.

Subjects, and why each is there (GitHub's OIDC docs):
- `repo:O/R:ref:refs/heads/B`: a job on branch B WITHOUT a GitHub environment (the dev
  deploy on a push to main). A role guarded by environments does not trust it;
- `repo:O/R:environment:E`: a job that declares `environment: E` (the prod deploy). GitHub
  puts the environment in the subject instead of the ref, so the environment's
  "deployment branches" rule (main only) is what binds it to the branch: docs/cicd.md.
  A role that trusts an environment trusts ONLY its environments (deploy_subjects);
- `repo:O/R:pull_request`: any job of a pull_request event. Only the read-only preview
  role trusts it (preview_subjects), because a pull request runs code that has not been
  reviewed yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

Policy = dict[str, Any]

VERSION = "2012-10-17"

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# aws-actions/configure-aws-credentials asks GitHub for a token with this audience.
GITHUB_AUDIENCE = "sts.amazonaws.com"

PULUMI_OIDC_URL = "https://api.pulumi.com/oidc"
PULUMI_OIDC_HOST = "api.pulumi.com/oidc"
# Pulumi Deployments' operations, as they appear in the token's subject.
PULUMI_WRITE_OPERATIONS = ("update", "refresh")
PULUMI_PREVIEW_OPERATION = "preview"

# Every pattern ends in \Z, not $ (which also matches before a trailing newline), and is
# ASCII: \d and \w would accept Arabic-Indic digits and Cyrillic look-alikes.
# GitHub: owner 1-39 letters, digits or '-'; a repository name that is not "." or ".."
# (GitHub refuses both) and without the ".git" a clone URL adds.
REPOSITORY_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.{1,2}\Z)(?!.*\.git\Z)[A-Za-z0-9._-]{1,100}\Z",
    re.ASCII,
)
# git check-ref-format, simplified: no "..", "//", "@{", a component starting with "." or
# "-", a leading or trailing "/", a trailing "." or ".lock".
BRANCH_RE = re.compile(
    r"^(?![-/.])(?!.*(?:\.\.|//|@\{|\.lock(?:/|\Z)|/\.|/-|\.\Z))[A-Za-z0-9._/-]{1,200}(?<!/)\Z",
    re.ASCII,
)
# GitHub environment names: up to 255 characters, no control characters or quotes, and
# no space at either end.
ENVIRONMENT_RE = re.compile(r"^[A-Za-z0-9._-](?:[A-Za-z0-9._ -]{0,253}[A-Za-z0-9._-])?\Z", re.ASCII)
PULUMI_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z", re.ASCII)
# For Pulumi Deployments' role (infra/deployments.py); IAM role names are ASCII.
ROLE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}\Z",
    re.ASCII,
)
GITHUB_OIDC_PROVIDER_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com\Z",
    re.ASCII,
)
PULUMI_OIDC_PROVIDER_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/api\.pulumi\.com/oidc\Z", re.ASCII
)

# Reads that return data rather than configuration. The preview role never gets them,
# even when the deployer policy does: a preview needs the shape of resources, not the
# secret's value or a key's plaintext. ECR's GetAuthorizationToken issues a registry
# credential: a preview never pushes or pulls an image.
SENSITIVE_READS = frozenset(
    {
        "secretsmanager:GetSecretValue",
        "ecr:GetAuthorizationToken",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:GetParametersByPath",
        "kms:Decrypt",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
    }
)
_READ_VERBS = ("Get", "List", "Describe")

# Bucket settings that a `pulumi preview` reads when the program adopts the bucket by name
# (Bucket.get) or refreshes the owner's bucket. Configuration only, never object data.
BUCKET_CONFIG_READS = (
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
)


class PolicyInputError(ValueError):
    """A value given to a CI policy function is unusable; the message names the key."""


def check_repository(value: str, key: str = "githubRepository") -> str:
    if not isinstance(value, str) or not REPOSITORY_RE.fullmatch(value):
        raise PolicyInputError(
            f"{key}: {value!r} is not a GitHub repository; use owner/repo, "
            "e.g. 'acme/cloud-trading-bot' (no URL, no .git)"
        )
    return value


def check_branch(value: str, key: str = "githubBranch") -> str:
    if not isinstance(value, str) or not value or not BRANCH_RE.fullmatch(value):
        raise PolicyInputError(
            f"{key}: {value!r} is not a branch name; use the short name, e.g. 'main' "
            "(not refs/heads/main)"
        )
    if value.startswith("refs/"):
        raise PolicyInputError(
            f"{key}: {value!r}: give the short branch name (e.g. 'main'), not a full ref"
        )
    return value


def check_environment(value: str, key: str = "githubEnvironment") -> str:
    if not isinstance(value, str) or not ENVIRONMENT_RE.fullmatch(value):
        raise PolicyInputError(
            f"{key}: {value!r} is not a GitHub environment name; use letters, digits, "
            "'.', '_', '-' or spaces, e.g. 'production'"
        )
    return value


def check_pulumi_name(value: str | None, key: str) -> str:
    if value is None or value == "":
        # pulumi.get_organization() is empty outside Pulumi Cloud (and in bare mocks).
        raise PolicyInputError(
            f"{key}: not set; Pulumi Deployments needs the Pulumi Cloud organization "
            "(run with a Pulumi Cloud backend, where pulumi.get_organization() knows it)"
        )
    if not isinstance(value, str) or not PULUMI_NAME_RE.fullmatch(value):
        raise PolicyInputError(
            f"{key}: {value!r} is not a Pulumi organization, project or stack name; "
            "use letters, digits, '.', '_' or '-'"
        )
    return value


def deploy_subjects(repository: str, branch: str, environments: Iterable[str] = ()) -> list[str]:
    """Who may assume a deploy role: the jobs of the given GitHub environments, or, with
    none, the jobs of the branch. Exact `sub` claims, sorted so the document diffs cleanly.

    With environments the branch is NOT trusted as well: the environment (required
    reviewers, deployment branches = main only) is the gate, and a bare-branch subject
    would let any job on that branch without the environment (the dev deploy, say)
    assume the role and skip the approval. The branch is checked either way: it is
    still the one the environment's deployment-branch rule should name."""
    check_repository(repository)
    check_branch(branch)
    subjects = {f"repo:{repository}:environment:{check_environment(e)}" for e in environments}
    return sorted(subjects) or [f"repo:{repository}:ref:refs/heads/{branch}"]


def preview_subjects(repository: str) -> list[str]:
    """Who may assume a preview role: any job of a pull_request event."""
    return [f"repo:{check_repository(repository)}:pull_request"]


def pulumi_subjects(
    organization: str, project: str, stack: str, operations: Iterable[str]
) -> list[str]:
    """Pulumi Deployments' `sub` claims for one stack and the given operations."""
    org = check_pulumi_name(organization, "pulumiOrganization")
    proj = check_pulumi_name(project, "project")
    stk = check_pulumi_name(stack, "stack")
    return sorted(
        f"pulumi:deploy:org:{org}:project:{proj}:stack:{stk}:operation:{op}:scope:write"
        for op in set(operations)
    )


def _web_identity_statement(
    sid: str, provider_arn: str, host: str, audience: str, subjects: list[str]
) -> Policy:
    if not subjects:
        raise PolicyInputError(f"{sid}: a trust statement needs at least one subject")
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {
                f"{host}:aud": audience,
                f"{host}:sub": subjects if len(subjects) > 1 else subjects[0],
            }
        },
    }


def github_trust_statement(provider_arn: str, subjects: list[str]) -> Policy:
    return _web_identity_statement(
        "GitHubActions", provider_arn, GITHUB_OIDC_HOST, GITHUB_AUDIENCE, subjects
    )


def pulumi_trust_statement(provider_arn: str, organization: str, subjects: list[str]) -> Policy:
    # Pulumi Cloud's token carries the organization name as its audience.
    return _web_identity_statement(
        "PulumiDeployments",
        provider_arn,
        PULUMI_OIDC_HOST,
        check_pulumi_name(organization, "pulumiOrganization"),
        subjects,
    )


def trust_policy(statements: Iterable[Policy]) -> Policy:
    stmts = list(statements)
    if not stmts:
        raise PolicyInputError("a trust policy needs at least one statement")
    return {"Version": VERSION, "Statement": stmts}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_policy(document: str | Mapping[str, Any], key: str = "deployerPolicy") -> Policy:
    """A policy given as JSON text or as a dict, checked to be an IAM policy document."""
    if isinstance(document, str):
        try:
            data = json.loads(document)
        except (ValueError, RecursionError) as exc:
            raise PolicyInputError(
                f"{key}: not valid JSON ({exc}); pass the policy document from "
                "infra.policies.deployer_policy() as a dict or json.dumps() of it"
            ) from None
    else:
        data = dict(document)
    if not isinstance(data, dict) or not isinstance(data.get("Statement"), list | dict):
        raise PolicyInputError(
            f"{key}: not an IAM policy document (expected an object with a Statement list)"
        )
    if data.get("Version", VERSION) not in (VERSION, "2008-10-17"):
        raise PolicyInputError(f"{key}: Version {data['Version']!r} must be {VERSION!r}")
    statements = _as_list(data["Statement"])
    for i, stmt in enumerate(statements):
        _check_statement(stmt, f"{key}: Statement[{i}]")
    return {"Version": data.get("Version", VERSION), "Statement": statements}


def _strings(stmt: Mapping[str, Any], field: str, where: str) -> list[str]:
    values = _as_list(stmt.get(field))
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyInputError(
            f"{where}.{field}: {stmt.get(field)!r} must be a non-empty string or a "
            "non-empty list of strings"
        )
    return values


def _check_statement(stmt: Any, where: str) -> None:
    """The statement shapes read_only_policy() relies on, so a malformed file fails with
    a message naming the statement and the field rather than a traceback."""
    if not isinstance(stmt, dict):
        raise PolicyInputError(f"{where} is not an object")
    if "Effect" not in stmt:
        raise PolicyInputError(f"{where} has no Effect")
    if stmt["Effect"] not in ("Allow", "Deny"):
        raise PolicyInputError(f"{where}.Effect: {stmt['Effect']!r} must be 'Allow' or 'Deny'")
    if "NotAction" in stmt or "NotResource" in stmt:
        # An allow-everything-except statement cannot be narrowed to reads safely.
        raise PolicyInputError(
            f"{where} uses NotAction/NotResource; list actions and resources explicitly"
        )
    if any(a == "*" or a.endswith(":*") for a in _strings(stmt, "Action", where)):
        raise PolicyInputError(f"{where} grants a wildcard action; list the actions")
    _strings(stmt, "Resource", where)
    if "Sid" in stmt and not isinstance(stmt["Sid"], str):
        raise PolicyInputError(f"{where}.Sid: {stmt['Sid']!r} must be a string")
    if "Condition" in stmt and not isinstance(stmt["Condition"], dict):
        raise PolicyInputError(f"{where}.Condition: must be an object")


def is_read_action(action: str) -> bool:
    service, _, name = action.partition(":")
    return bool(service) and name.startswith(_READ_VERBS) and action not in SENSITIVE_READS


def _bucket_arns(resources: list[str]) -> list[str]:
    # "arn:aws:s3:::bucket" names a bucket; "arn:aws:s3:::bucket/key" an object.
    return [r for r in resources if ":s3:::" in r and "/" not in r.split(":s3:::", 1)[1]]


def read_only_policy(deployer: str | Mapping[str, Any]) -> Policy:
    """The preview role's policy: the deployer policy's reads, on the same resources.

    Derived rather than hand-written so preview and deploy can never drift apart: every
    resource the deployer may change, the previewer may look at, and nothing else. Deny
    statements are kept as they are (they only ever narrow). Sensitive reads are dropped.
    The buckets the deployer touches also get their configuration reads, which a
    preview of an adopted bucket needs.
    """
    policy = parse_policy(deployer)
    statements: list[Policy] = []
    buckets: set[str] = set()
    for i, stmt in enumerate(policy["Statement"]):
        if stmt["Effect"] == "Deny":
            statements.append(stmt)
            continue
        actions = sorted({a for a in _as_list(stmt.get("Action")) if is_read_action(a)})
        resources = _as_list(stmt.get("Resource"))
        buckets.update(_bucket_arns(resources))
        if not actions:
            continue
        read = {**stmt, "Action": actions, "Sid": f"Read{stmt.get('Sid', i)}"}
        statements.append(read)
    if buckets:
        statements.append(
            {
                "Sid": "ReadBucketConfiguration",
                "Effect": "Allow",
                "Action": list(BUCKET_CONFIG_READS),
                "Resource": sorted(buckets),
            }
        )
    if not statements:
        raise PolicyInputError(
            "deployerPolicy: it grants no read action, so a read-only preview policy "
            "would be empty; add the Get/List/Describe actions the deploy needs"
        )
    return {"Version": VERSION, "Statement": statements}


def main(argv: list[str] | None = None) -> int:
    """Print the CI roles' documents, for creating the roles by hand (docs/cicd.md).

    python -m infra.ci_policies trust deploy --repository acme/bot --account 123456789012 \
        [--branch main] [--environment production]
    python -m infra.ci_policies trust preview --repository acme/bot --account 123456789012
    python -m infra.ci_policies read-only --policy deployer-policy.dev.json
    """
    import argparse
    import sys
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="python -m infra.ci_policies",
        description=main.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    trust = sub.add_parser("trust", help="a CI role's trust policy")
    trust.add_argument("role", choices=("deploy", "preview"))
    trust.add_argument("--repository", required=True, help="owner/repo")
    trust.add_argument("--account", required=True, help="12-digit AWS account id")
    trust.add_argument("--branch", default="main")
    trust.add_argument(
        "--environment",
        action="append",
        default=[],
        help="GitHub environment allowed to deploy (repeatable), e.g. production",
    )
    trust.add_argument("--partition", default="aws", choices=("aws", "aws-cn", "aws-us-gov"))
    ro = sub.add_parser("read-only", help="the preview role's policy, from the deployer's")
    ro.add_argument("--policy", type=Path, required=True, help="deployer policy JSON file")
    args = parser.parse_args(argv)
    try:
        if args.command == "read-only":
            try:
                text = args.policy.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise PolicyInputError(
                    f"--policy: cannot read {args.policy} ({reason}); write it with "
                    "'python -m infra.deployer_policy --stack dev --account-id ... --output FILE'"
                ) from None
            doc = read_only_policy(text)
        else:
            if not re.fullmatch(r"\d{12}", args.account):
                raise PolicyInputError(f"--account: {args.account!r} is not a 12-digit account id")
            provider = f"arn:{args.partition}:iam::{args.account}:oidc-provider/{GITHUB_OIDC_HOST}"
            if args.role == "deploy":
                subjects = deploy_subjects(args.repository, args.branch, args.environment)
            else:
                subjects = preview_subjects(args.repository)
            doc = trust_policy([github_trust_statement(provider, subjects)])
    except PolicyInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
