"""moto_server for the test suite, with DynamoDB requests applied one at a time.

Usage: python scripts/moto_server.py -H 127.0.0.1 -p PORT   (the same arguments as moto_server)

moto's server is threaded and its DynamoDB backend reads, modifies and writes items without a
lock, so two concurrent UpdateItem ADDs on one item can lose an increment (seen: 398 of 400) and
two concurrent conditional puts can both succeed. Real DynamoDB applies writes to one item one at a
time, and the store contract tests check exactly that, so DynamoDB requests are serialized here.
Other services (SQS, whose receive may long-poll) keep moto's normal concurrency. Everything else
is moto's own `moto.server.main`.
"""

import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # Consume the response inside the lock: the backend work may be lazy.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialized

if __name__ == "__main__":
    server.main(sys.argv[1:])
