"""The `tags` key: extra tags on every taggable resource, by AWS's tagging rules.

AWS ("Tagging your AWS resources", best practices and limits):
- at most 50 user tags per resource; the program always sets three of its own
  (`project`, `environment`, `managed-by`), so the config may add 47;
- a key is 1-128 characters, a value 0-256, both Unicode letters, digits, spaces and
  `_ . : / = + - @` only;
- keys starting with `aws:` (in any case) are reserved for AWS.

And this project's own rules: the three tags the program sets are not overwritten from
config (in any case or width: `Environment`, or `environment` in fullwidth letters, would
sit beside the real one and mislead every cost report), and keys and values carry no surrounding
whitespace, so two tags never differ by a space nobody can see.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from infra.config.rules import Invalid, describe_char, json_value, kind_of, text

# The tags the program sets on everything (StackConfig.all_tags).
PROJECT_TAG_KEYS = ("project", "environment", "managed-by")
AWS_TAG_LIMIT = 50
MAX_TAGS = AWS_TAG_LIMIT - len(PROJECT_TAG_KEYS)
KEY_MAX, VALUE_MAX = 128, 256
ALLOWED = (
    f"a map of up to {MAX_TAGS} tags: keys of 1-{KEY_MAX} and values of 0-{VALUE_MAX} "
    "letters, digits, spaces or _.:/=+-@, no 'aws:' prefix"
)
_PUNCTUATION = frozenset("_.:/=+-@")


def _bad_char(value: str) -> str | None:
    for ch in value:
        category = unicodedata.category(ch)
        if not (category[0] in "LN" or category == "Zs" or ch in _PUNCTUATION):
            return ch
    return None


def _fold(key: str) -> str:
    return unicodedata.normalize("NFKC", key).casefold()


def _entry(key: Any, value: Any) -> None:
    if not isinstance(key, str) or not key:
        raise Invalid(f"{ALLOWED} (a tag key is empty)")
    text(key, f"{ALLOWED} (tag key {key!r})", max_len=KEY_MAX)
    if not isinstance(value, str):
        raise Invalid(f"{ALLOWED} (tag {key!r} has {kind_of(value)}: quote it as a string)")
    text(value, f"{ALLOWED} (tag {key!r})", max_len=VALUE_MAX)
    for part, what in ((key, "key"), (value, "value")):
        odd = _bad_char(part)
        if odd is not None:
            raise Invalid(f"{ALLOWED} (tag {key!r}: {describe_char(odd)} in its {what})")
    if _fold(key).startswith("aws:"):
        raise Invalid(f"{ALLOWED} (tag {key!r}: 'aws:' keys are reserved for AWS)")
    if _fold(key) in PROJECT_TAG_KEYS:
        raise Invalid(
            f"{ALLOWED} (tag {key!r}: the program sets {', '.join(PROJECT_TAG_KEYS)} "
            "itself; choose another key)"
        )


def tags(value: Any) -> Mapping[str, str]:
    if value is None or value == "":
        return MappingProxyType({})
    data = json_value(value, dict, ALLOWED)
    if len(data) > MAX_TAGS:
        raise Invalid(f"{ALLOWED} (this has {len(data)})")
    folded: dict[str, str] = {}
    for key, item in data.items():
        _entry(key, item)
        if _fold(key) in folded:
            raise Invalid(f"{ALLOWED} ({folded[_fold(key)]!r} and {key!r} differ only in case)")
        folded[_fold(key)] = key
    return MappingProxyType(dict(data))
