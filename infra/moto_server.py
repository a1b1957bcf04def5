"""moto server with DynamoDB's isolation: each DynamoDB request runs alone.

Real DynamoDB applies every request (a conditional PutItem, a TransactWriteItems) atomically
and in isolation. moto's threaded server does not: two transactions can interleave between
checking their conditions and writing, so two writers can both "win" a race that DynamoDB
would refuse to one of them. This launcher runs moto's own server exactly as `moto_server`
does, with one difference: requests to DynamoDB and DynamoDB Streams hold one lock while moto
handles them. S3 and SQS (long polls included) stay concurrent.

Usage: python infra/moto_server.py [-H HOST] [-p PORT]   (the same flags as moto_server)
"""

import sys
import threading

from moto import server as moto_server

_DYNAMODB_LOCK = threading.Lock()
_DYNAMODB_TARGETS = ("DynamoDB_", "DynamoDBStreams_")


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


if __name__ == "__main__":
    moto_server.DomainDispatcherApplication = _IsolatingDispatcher
    moto_server.main(sys.argv[1:])
