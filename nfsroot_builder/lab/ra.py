"""A bare IPv6 Router Advertisement responder for the lab bridge.

iPXE configures IPv4 (DHCP) and IPv6 (SLAAC) together and waits for both;
on a segment with no IPv6 router its IPv6 side gives up only after about
15 s, on every boot. Answering each Router Solicitation with an RA that
announces nothing (router lifetime 0, no prefix, M=O=0; RFC 4861 4.2) lets
it finish at once. Run inside the lab namespace:
    python3 -m nfsroot_builder.lab.ra BRIDGE
"""
from __future__ import annotations

import socket
import struct
import sys

ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT = 133, 134
ICMP6_FILTER = 1   # <netinet/icmp6.h>


def advertisement(mac: str) -> bytes:
    # type, code, checksum (the kernel fills it in), cur hop limit, flags,
    # router lifetime 0 (not a default router), reachable time, retrans timer
    header = struct.pack("!BBHBBHII", ROUTER_ADVERTISEMENT, 0, 0, 64, 0, 0, 0, 0)
    source_lladdr = struct.pack("!BB", 1, 1) + bytes.fromhex(mac.replace(":", ""))
    return header + source_lladdr


def only_solicitations() -> bytes:
    """An ICMP6_FILTER that blocks every type but 133 (bit set = blocked)."""
    words = [0xFFFFFFFF] * 8
    words[ROUTER_SOLICITATION >> 5] &= ~(1 << (ROUTER_SOLICITATION & 31))
    return struct.pack("@8I", *words)


def serve(interface: str) -> None:
    index = socket.if_nametoindex(interface)
    mac = open(f"/sys/class/net/{interface}/address").read().strip()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    # RFC 4861 6.1.2: hosts drop an RA whose hop limit is not 255.
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    all_routers = socket.inet_pton(socket.AF_INET6, "ff02::2")
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, all_routers + struct.pack("@I", index))
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, only_solicitations())
    ra = advertisement(mac)
    print(f"answering router solicitations on {interface} ({mac})", flush=True)
    while True:
        data, addr = sock.recvfrom(1500)
        if data[:1] == bytes([ROUTER_SOLICITATION]):
            try:
                sock.sendto(ra, ("ff02::1", 0, 0, index))
            except OSError as e:
                # EADDRNOTAVAIL while our own link-local address is still
                # tentative (DAD, RFC 4862 5.4): seen on a replica's fresh
                # veth. The client solicits again (RFC 4861 6.3.7).
                print(f"RS from {addr[0]}: no RA sent ({e})", flush=True)
                continue
            print(f"RS from {addr[0]}: sent RA", flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
