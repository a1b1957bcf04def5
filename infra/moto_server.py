"""moto server with DynamoDB's isolation and DynamoDB's transaction rollback.

Real DynamoDB applies every request (a conditional PutItem, a TransactWriteItems) atomically
and in isolation. moto's threaded server does not: two transactions can interleave between
checking their conditions and writing, so two writers can both "win" a race that DynamoDB
would refuse to one of them. This launcher runs moto's own server exactly as `moto_server`
does, with three differences:

1. Requests to DynamoDB and DynamoDB Streams hold one lock while moto handles them. S3 and SQS
   (long polls included) stay concurrent.
2. moto keeps every shard iterator it ever handed out (one more per GetRecords, four a second
   per consumer): the launcher keeps the newest 10,000 (DynamoDB's expire after 15 minutes; an
   evicted one answers an error and the bridge takes a fresh iterator).
3. A cancelled TransactWriteItems is rolled back item by item, in place. moto 5.2.5 deep-copies
   every table a transaction touches before it starts and, when the transaction is cancelled,
   puts the copies back: new `Table` objects with a new stream shard. Every shard iterator
   already handed out stays bound to the old shard, which never receives another record, so a
   stream consumer reads nothing ever again after one lost race. It also copies the whole event
   table on every transaction, which grows with history. Here, a transaction remembers only the
   items it touches (one copy each) and the length of each touched table's stream; a cancelled
   transaction puts those items back and drops the stream records it wrote (DynamoDB emits no
   stream record for a cancelled transaction). The table and its shard stay the same objects.

Usage: python infra/moto_server.py [-H HOST] [-p PORT]   (the same flags as moto_server)
"""

import copy
import sys
import threading

import moto
from moto import server as moto_server
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodbstreams import models as streams_models
from moto.dynamodb.comparisons import get_filter_expression

_DYNAMODB_LOCK = threading.Lock()
_DYNAMODB_TARGETS = ("DynamoDB_", "DynamoDBStreams_")
# The moto version whose transact_write_items this file replaces (same behaviour otherwise).
_PATCHED_FOR = "5.2."


def _isolate_dynamodb(app):
    def application(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGETS):
            with _DYNAMODB_LOCK:
                # Consume the whole response under the lock: the write happens in the handler.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return application


class _IsolatingDispatcher(moto_server.DomainDispatcherApplication):
    """moto's dispatcher, with DynamoDB requests serialised."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._isolated = _isolate_dynamodb(super().__call__)

    def __call__(self, environ, start_response):
        return self._isolated(environ, start_response)


def _item_key(table, op_type, op):
    """(hash, range) DynamoTypes of the item an operation targets, or None when malformed."""
    try:
        if op_type == "Put":
            attrs = op["Item"]
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = (
                DynamoType(attrs[table.range_key_attr])
                if table.range_key_attr is not None
                else None
            )
        else:
            key = op["Key"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (
                DynamoType(key[table.range_key_attr])
                if table.range_key_attr is not None
                else None
            )
        return hash_value, range_value
    except (KeyError, TypeError, AttributeError):
        return None


def _peek(table, hash_value, range_value):
    """The stored item, without creating entries in moto's defaultdict."""
    if range_value is not None:
        return table.items.get(hash_value, {}).get(range_value)
    return table.items.get(hash_value)


class _Undo:
    """What a transaction touched: a copy of each item before it, and each stream's length."""

    def __init__(self, backend, transact_items):
        self.items = []  # (table, hash, range, copy of the item or None)
        self.streams = {}  # table name -> (shard, number of records before)
        for item in transact_items:
            try:
                op_type, op = next(iter(item.items()))
                table = backend.tables.get(op.get("TableName"))
            except (StopIteration, AttributeError):
                continue
            if table is None:
                continue
            key = _item_key(table, op_type, op)
            if key is not None:
                before = _peek(table, *key)
                self.items.append((table, key[0], key[1], copy.deepcopy(before)))
            shard = table.stream_shard
            if shard is not None and table.name not in self.streams:
                self.streams[table.name] = (shard, len(shard.items))

    def roll_back(self):
        for table, hash_value, range_value, before in reversed(self.items):
            if range_value is not None:
                entries = table.items.get(hash_value)
                if before is None:
                    if entries is not None:
                        entries.pop(range_value, None)
                        if not entries:
                            table.items.pop(hash_value, None)
                else:
                    table.items[hash_value][range_value] = before
            elif before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before
        for shard, length in self.streams.values():
            # The same shard object: iterators handed out before stay valid.
            del shard.items[length:]


def _transact_write_items(self, transact_items):
    """moto 5.2.5's DynamoDBBackend.transact_write_items, rolling back in place (see above)."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _Undo(self, transact_items)

    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item), ..]
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get(
                "ReturnValuesOnConditionCheckFailure"
            )

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.roll_back()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: E722 as moto does: report, then cancel
            errors.append((type(e).__name__, str(e), original_item))

    if any(code is not None for code, _, _ in errors):
        undo.roll_back()
        raise TransactionCanceledException(errors)


_MAX_SHARD_ITERATORS = 10_000


def _bounded(method):
    """Wraps a streams backend method so that at most _MAX_SHARD_ITERATORS iterators are kept."""

    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        iterators = self.shard_iterators
        while len(iterators) > _MAX_SHARD_ITERATORS:
            # Dicts keep insertion order: drop the oldest.
            iterators.pop(next(iter(iterators)))
        return result

    return wrapper


def install():
    """Replaces moto's transact_write_items (only on the moto version it was written for)."""
    if not moto.__version__.startswith(_PATCHED_FOR):
        sys.stderr.write(
            f"moto_server.py: moto {moto.__version__} is not {_PATCHED_FOR}x; "
            "cancelled transactions keep moto's own rollback (which breaks stream iterators)\n"
        )
        return
    dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items
    backend = streams_models.DynamoDBStreamsBackend
    backend.get_records = _bounded(backend.get_records)
    backend.get_shard_iterator = _bounded(backend.get_shard_iterator)


if __name__ == "__main__":
    install()
    moto_server.DomainDispatcherApplication = _IsolatingDispatcher
    moto_server.main(sys.argv[1:])
