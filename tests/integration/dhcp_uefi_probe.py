"""A PXE firmware's first DHCP question, asked for real: run inside the test's
network namespace (`ip netns exec NS python3 dhcp_uefi_probe.py IFACE MAC
ARCH`), it broadcasts a DHCPDISCOVER as a PXE ROM does (vendor class
PXEClient, client system architecture in option 93, RFC 4578) and prints the
first answer's boot file, server and root-path as JSON.
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import time

MAGIC = bytes([99, 130, 83, 99])


def discover(mac: str, arch: int, xid: int) -> bytes:
    hw = bytes.fromhex(mac.replace(":", ""))
    # op, htype, hlen, hops, xid, secs, flags (broadcast: we have no address yet)
    head = struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000) + bytes(16) + hw + bytes(10) + bytes(192)
    vendor = f"PXEClient:Arch:{arch:05d}:UNDI:003016".encode()
    opts = bytes([53, 1, 1])                                  # DHCPDISCOVER
    opts += bytes([93, 2]) + struct.pack("!H", arch)          # client system architecture
    opts += bytes([94, 3, 1, 3, 16])                          # client NDI: UNDI 3.16
    opts += bytes([97, 17, 0]) + bytes(range(16))             # client machine UUID
    opts += bytes([60, len(vendor)]) + vendor
    opts += bytes([55, 8, 1, 3, 6, 12, 17, 43, 66, 67])       # parameter request list
    return head + MAGIC + opts + bytes([255])


def options(packet: bytes) -> dict[int, bytes]:
    out, i = {}, 240
    while i < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        code, length = packet[i], packet[i + 1]
        out[code] = packet[i + 2:i + 2 + length]
        i += 2 + length
    return out


def main() -> None:
    iface, mac, arch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    xid = int.from_bytes(os.urandom(4), "big")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sock.sendto(discover(mac, arch, xid), ("255.255.255.255", 67))
        ready, _, _ = select.select([sock], [], [], 1.0)
        if not ready:
            continue
        packet = sock.recv(4096)
        if len(packet) < 240 or packet[0] != 2 or struct.unpack("!I", packet[4:8])[0] != xid:
            continue
        opts = options(packet)
        boot_file = packet[108:236].split(b"\0")[0] or opts.get(67, b"").split(b"\0")[0]
        print(json.dumps({"file": boot_file.decode(), "siaddr": socket.inet_ntoa(packet[20:24]),
                          "yiaddr": socket.inet_ntoa(packet[16:20]), "type": opts.get(53, b"\0")[0],
                          # option 17 (RFC 2132 3.19): which root version a node is sent
                          "root_path": opts.get(17, b"").rstrip(b"\0").decode(errors="replace")}))
        return
    print(json.dumps({"file": None}))


if __name__ == "__main__":
    main()
