#!/usr/bin/env python3
"""Readiness probes for the dev stack: a Kafka ApiVersions+Metadata round trip, and GET /subjects.

usage: ready.py kafka HOST:PORT | registry URL   (exit 0 when ready)
"""
import json
import socket
import struct
import sys
import urllib.request


def kafka_ready(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.settimeout(3)
            client = b"tickflow-ready"
            # Metadata v1 request for all topics (null array = -1).
            body = struct.pack(">hhih", 3, 1, 7, len(client)) + client + struct.pack(">i", -1)
            s.sendall(struct.pack(">i", len(body)) + body)
            head = s.recv(4)
            if len(head) < 4:
                return False
            size = struct.unpack(">i", head)[0]
            data = b""
            while len(data) < size:
                chunk = s.recv(size - len(data))
                if not chunk:
                    return False
                data += chunk
            corr, nbrokers = struct.unpack(">ii", data[:8])
            return corr == 7 and nbrokers >= 1
    except OSError:
        return False


def registry_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/subjects", timeout=2) as r:
            return r.status == 200 and isinstance(json.loads(r.read() or b"[]"), list)
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    kind, target = sys.argv[1], sys.argv[2]
    ok = kafka_ready(target) if kind == "kafka" else registry_ready(target)
    sys.exit(0 if ok else 1)
