"""Kea's high-availability hook for replicated boot servers ([[servers]],
docs/replicas.md): the part of each server's kea-dhcp4 config that makes
the servers one DHCP service.

Mode load-balancing: each server answers about half of the nodes (by a hash
of the client's MAC, Kea ARM "Load Balancing Configuration") and names
itself as next-server and NFS server, so a boot storm is spread over two
servers; when a peer stops answering, the survivor goes to partner-down and
answers every node. Kea 2.2 balances between two servers only: a third and
further servers are "backup" peers (they answer once the admin moves them
in, ARM "Backup Servers").

The peers talk HTTP to each other's own listener (HA+MT, "http-dedicated-
listener", Kea 2.2 ARM "Multi-Threaded Configuration (HA+MT)"): no
kea-ctrl-agent is needed. Leases are not exchanged (send-lease-updates and
sync-leases off): every node has a reservation, so both servers give it the
same address from the config alone, and a dead peer cannot hold up an
answer waiting for its lease update acknowledgement.
"""
from __future__ import annotations

from ..config import PRIMARY_SERVER, Config, Replica
from . import Served

HOOKS_DIR = "/usr/lib/x86_64-linux-gnu/kea/hooks"
HA_PORT = 8647   # each server's HA listener, on its own cluster address


def peers(cfg: Config) -> list[tuple[str, str]]:
    """(HA name, address) of every boot server: [server] first, then [[servers]]."""
    return [(PRIMARY_SERVER, cfg.server.address)] + [(r.name, r.address) for r in cfg.servers]


def served_prefix(r: Replica) -> str:
    """The prefix of the paths replica r's daemons serve: its tree's path
    (a local directory is a staging prefix; host:/ a server's own /)."""
    return r.tree.split(":", 1)[1] if not r.tree.startswith("/") else r.tree


def preferred_servers(cfg: Config, primary: Served) -> dict[str, tuple[str, Served]]:
    """Node name -> (address, served paths) of its preferred server, for the
    nodes that name one (node.server; cfg the base config, primary the
    primary's served paths). Kea's load-balancing assigns a client to a
    server by a hash of its MAC (ARM "Load Balancing Configuration") and
    offers no way to pin one, so a preference is carried by the answer
    instead: every server sends the node to its preferred server (its
    reservation's next-server and root-path), whichever server answers.
    That server's TFTP menu then names it for NFS or HTTP as well."""
    where = {PRIMARY_SERVER: (cfg.server.address, primary),
             **{r.name: (r.address, Served(served_prefix(r))) for r in cfg.servers}}
    return {n.name: where[n.server] for n in cfg.nodes if n.server in where}


def role(index: int) -> str:
    return "primary" if index == 0 else "secondary" if index == 1 else "backup"


def kea_ha(cfg: Config, this: str = PRIMARY_SERVER) -> dict:
    """Dhcp4 keys for server `this` (an HA name from peers(cfg)) of the base config."""
    ha = {
        "this-server-name": this,
        "mode": "load-balancing",
        # Heartbeats each second; a peer silent for 4 s is down
        # (max-unacked-clients 0: without waiting for clients to retry,
        # ARM "Load Balancing Configuration").
        "heartbeat-delay": 1000, "max-response-delay": 4000, "max-ack-delay": 1000, "max-unacked-clients": 0,
        "send-lease-updates": False, "sync-leases": False,
        "multi-threading": {"enable-multi-threading": True, "http-dedicated-listener": True,
                            "http-listener-threads": 1, "http-client-threads": 1},
        "peers": [{"name": name, "url": f"http://{address}:{HA_PORT}/", "role": role(i), "auto-failover": True}
                  for i, (name, address) in enumerate(peers(cfg))],
    }
    return {
        # The HA hook needs lease_cmds loaded first (ARM "libdhcp_ha.so").
        "hooks-libraries": [{"library": f"{HOOKS_DIR}/libdhcp_lease_cmds.so"},
                            {"library": f"{HOOKS_DIR}/libdhcp_ha.so",
                             "parameters": {"high-availability": [ha]}}],
        # The HA dedicated listener needs the server multi-threaded.
        "multi-threading": {"enable-multi-threading": True, "thread-pool-size": 2, "packet-queue-size": 16},
    }
