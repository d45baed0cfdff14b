"""Minimal DNS A-record lookup against one server: dnsq.py SERVER NAME.

Prints each address on its own line; exits 1 when there is no answer.
"""

import random
import socket
import struct
import sys


def query(server: str, name: str, timeout: float = 2.0) -> list[str]:
    qid = random.randrange(1 << 16)
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = header + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (server, 53))
        data, _ = s.recvfrom(4096)
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != qid or flags & 0x000F:
        return []
    off = 12
    for _ in range(qd):
        off = _skip_name(data, off) + 4
    out = []
    for _ in range(an):
        off = _skip_name(data, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[off : off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[off : off + 4]))
        off += rdlen
    return out


def _skip_name(data: bytes, off: int) -> int:
    while True:
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += n + 1


if __name__ == "__main__":
    try:
        addrs = query(sys.argv[1], sys.argv[2])
    except OSError as e:
        print(f"dnsq: {e}", file=sys.stderr)
        sys.exit(1)
    print("\n".join(addrs))
    sys.exit(0 if addrs else 1)
