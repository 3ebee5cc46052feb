#!/usr/bin/env python3
"""Prints COUNT callback query strings signed as WeChat signs them, one per line, each with its own
nonce (PREFIX + n): the replay guard refuses a signed query reused with another body, so every
POST of a load run needs one of its own. Used by scripts/load.sh and scripts/instructions.sh.

  scripts/signed_queries.py TOKEN TIMESTAMP COUNT PREFIX
"""
import hashlib
import sys

token, timestamp, count, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for n in range(count):
    nonce = f"{prefix}{n}"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    print(f"signature={signature}&timestamp={timestamp}&nonce={nonce}")
