"""The ledger on DynamoDB (`cloud-trading-bot-<env>-ledger`, `pk`/`sk`), with the same
semantics as MemoryStore: a conditional put is `attribute_not_exists(pk)` (create) or
`version = :v` (update); several writes go in one TransactWriteItems.

boto3's type (de)serializers are imported when a store is made, not with this module.
Numbers go in as Decimal(repr(float)), the shortest string that round-trips, and come
back as int when whole-valued in an integer field or float otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from backend.trading.ledger import Delete, Item, LedgerConflict, Put, versioned

MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else float(value)
        )
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    return value


class DynamoStore:
    def __init__(self, *, client: Any, table_name: str):
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._client = client
        self._table = table_name
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    @property
    def table_name(self) -> str:
        return self._table

    def _encode(self, item: Item) -> dict[str, Any]:
        return {k: self._ser.serialize(_to_dynamo(v)) for k, v in item.items()}

    def _decode(self, raw: dict[str, Any]) -> Item:
        return {k: _from_dynamo(self._de.deserialize(v)) for k, v in raw.items()}

    def get(self, pk: str, sk: str) -> Item | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConsistentRead=True,  # the single writer reads its own last write
        )
        raw = response.get("Item")
        return None if raw is None else self._decode(raw)

    def query(self, pk: str, *, newest: int | None = None) -> list[Item]:
        if newest is not None and newest <= 0:
            return []
        items: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        if newest is not None:
            # The newest first, one page of `newest` items; returned oldest first.
            kwargs.update(ScanIndexForward=False, Limit=newest)
            response = self._client.query(**kwargs)
            return [self._decode(raw) for raw in reversed(response.get("Items", []))]
        while True:
            response = self._client.query(**kwargs)
            items.extend(self._decode(raw) for raw in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            kwargs["ExclusiveStartKey"] = last

    def _condition(self, op: Put | Delete) -> dict[str, Any]:
        if isinstance(op, Delete):
            return {"ConditionExpression": "attribute_exists(pk)"} if op.expect_exists else {}
        if op.expect is None:
            return {}
        if op.expect == 0:
            return {"ConditionExpression": "attribute_not_exists(pk)"}
        return {
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(op.expect)}},
        }

    def write(self, ops: Sequence[Put | Delete]) -> None:
        from botocore.exceptions import ClientError

        if not ops:
            return
        if len(ops) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"at most {MAX_TRANSACTION_ITEMS} writes per transaction")
        try:
            if len(ops) == 1:
                self._write_one(ops[0])
            else:
                self._client.transact_write_items(
                    TransactItems=[self._transact_item(op) for op in ops]
                )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise LedgerConflict(f"conditional write refused on {self._table}") from None
            if code == "TransactionCanceledException":
                reasons = [
                    r.get("Code", "")
                    for r in err.response.get("CancellationReasons", [])
                    if r.get("Code") not in (None, "", "None")
                ]
                if not reasons or "ConditionalCheckFailed" in reasons:
                    raise LedgerConflict(
                        f"transaction refused on {self._table}: {', '.join(reasons) or 'conflict'}"
                    ) from None
            raise

    def _write_one(self, op: Put | Delete) -> None:
        if isinstance(op, Put):
            self._client.put_item(
                TableName=self._table, Item=self._encode(versioned(op)), **self._condition(op)
            )
        else:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": op.pk}, "sk": {"S": op.sk}},
                **self._condition(op),
            )

    def _transact_item(self, op: Put | Delete) -> dict[str, Any]:
        if isinstance(op, Put):
            body: dict[str, Any] = {"TableName": self._table, "Item": self._encode(versioned(op))}
            body.update(self._condition(op))
            return {"Put": body}
        body = {"TableName": self._table, "Key": {"pk": {"S": op.pk}, "sk": {"S": op.sk}}}
        body.update(self._condition(op))
        return {"Delete": body}


def ensure_table(client: Any, table_name: str) -> None:
    """Create the ledger table as infra/ declares it (pk/sk strings, on demand), for the
    tests, the benchmark and the rehearsal; a no-op when it exists."""
    try:
        client.describe_table(TableName=table_name)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    client.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
