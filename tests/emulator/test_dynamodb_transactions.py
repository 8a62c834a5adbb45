"""Self-test of ``dynamodb_transactions``: TransactWriteItems behaves as AWS documents it (all or
nothing; a failed condition cancels the call with one reason per item, ``None`` for the others) and
no longer snapshots the table once per item.

AWS: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
"""

from __future__ import annotations

import copy
import threading
import unittest

import boto3
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from ops_emulator.app import OpsEmulator

REGION = "us-east-1"


def put(key: str, expected: int | None) -> dict:
    """A conditional put as legacy-health-monitor sends it."""
    item = {"key": {"S": key}, "version": {"N": str((expected or 0) + 1)}, "document": {"S": "{}"}}
    if expected is None:
        return {"Put": {"TableName": "states", "Item": item,
                        "ConditionExpression": "attribute_not_exists(#k)",
                        "ExpressionAttributeNames": {"#k": "key"}}}
    return {"Put": {"TableName": "states", "Item": item, "ConditionExpression": "#v = :expected",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(expected)}}}}


class TransactWriteItems(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        app = OpsEmulator(DomainDispatcherApplication(create_backend_app), REGION)
        cls.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.dynamodb = boto3.client(
            "dynamodb", region_name=REGION, endpoint_url=f"http://127.0.0.1:{cls.server.server_port}",
            aws_access_key_id="testing", aws_secret_access_key="testing")
        cls.dynamodb.create_table(
            TableName="states", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()

    def version(self, key: str) -> int | None:
        item = self.dynamodb.get_item(TableName="states", Key={"key": {"S": key}}, ConsistentRead=True)
        return int(item["Item"]["version"]["N"]) if "Item" in item else None

    def test_a_failed_condition_cancels_the_whole_call_with_a_reason_per_item(self) -> None:
        self.dynamodb.transact_write_items(TransactItems=[put("a", None), put("b", None)])
        with self.assertRaises(ClientError) as raised:
            self.dynamodb.transact_write_items(TransactItems=[put("a", 1), put("b", 7), put("c", None)])
        error = raised.exception.response
        self.assertEqual(error["Error"]["Code"], "TransactionCanceledException")
        codes = [r["Code"] for r in error["CancellationReasons"]]
        self.assertEqual(codes, ["None", "ConditionalCheckFailed", "None"])
        # Nothing of the cancelled call was applied.
        self.assertEqual((self.version("a"), self.version("b"), self.version("c")), (1, 1, None))
        self.dynamodb.transact_write_items(TransactItems=[put("a", 1), put("c", None)])
        self.assertEqual((self.version("a"), self.version("c")), (2, 1))

    def test_a_hundred_items_take_one_snapshot_of_the_table_not_one_each(self) -> None:
        for start in range(0, 300, 100):
            self.dynamodb.transact_write_items(
                TransactItems=[put(f"bulk-{i}", None) for i in range(start, start + 100)])
        tables = []
        real = copy.deepcopy

        def counting(value, memo=None):
            if isinstance(value, Table):
                tables.append(value.name)
            return real(value, memo)

        copy.deepcopy = counting
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[put(f"bulk-{i}", 1) for i in range(100)])
        finally:
            copy.deepcopy = real
        self.assertEqual(tables, ["states"])
        self.assertEqual(self.version("bulk-99"), 2)


if __name__ == "__main__":
    unittest.main()
