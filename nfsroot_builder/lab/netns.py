"""The lab's network: one namespace holding a bridge with the server's address
and one tap per node. Nothing is added to the host's own namespace; every
`ip` command names the namespace (`ip -n NS ...`)."""
from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

from ..config import Config
from ..runner import Runner

# A fixed, locally administered MAC for the bridge: a bridge otherwise takes
# the lowest MAC of its ports and changes it as taps come and go, while dhcpd
# (LPF) keeps the address it saw at start-up.
BRIDGE_MAC = "02:00:6e:72:62:01"


def namespace(cfg: Config, state_dir: Path) -> str:
    """nrb-<build>-<6 hex of the state dir>: two builds of the same name under
    different prefixes (a test, a benchmark, the demo) get their own lab."""
    tag = hashlib.sha256(str(state_dir).encode()).hexdigest()[:6]
    return f"nrb-{cfg.name}-{tag}"


def tap_name(index: int) -> str:
    # IFNAMSIZ is 16 with the NUL: 15 characters at most.
    return f"nrb-tap{index}"


def exists(runner: Runner, ns: str) -> bool:
    return Path(f"/run/netns/{ns}").exists()


def create(runner: Runner, cfg: Config, ns: str) -> None:
    net = ipaddress.IPv4Network(cfg.network.subnet)
    bridge = cfg.server.interface
    runner.run(["ip", "netns", "add", ns])
    runner.run(["ip", "-n", ns, "link", "set", "lo", "up"])
    runner.run(["ip", "-n", ns, "link", "add", bridge, "address", BRIDGE_MAC, "type", "bridge"])
    # No STP, no forwarding delay: a port is usable the moment QEMU opens it,
    # so the firmware's first DHCPDISCOVER is not dropped.
    runner.run(["ip", "-n", ns, "link", "set", bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"])
    runner.run(["ip", "-n", ns, "addr", "add", f"{cfg.server.address}/{net.prefixlen}", "dev", bridge])
    runner.run(["ip", "-n", ns, "link", "set", bridge, "up"])
    for i, _node in enumerate(cfg.nodes):
        tap = tap_name(i)
        runner.run(["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"])
        runner.run(["ip", "-n", ns, "link", "set", tap, "master", bridge])
        runner.run(["ip", "-n", ns, "link", "set", tap, "up"])


def delete(runner: Runner, ns: str) -> None:
    # Deleting the namespace deletes its bridge and taps with it.
    runner.run(["ip", "netns", "delete", ns], check=False)


def veth_name(server: str) -> str:
    # The bridge's end of a replica's link; IFNAMSIZ: 15 characters at most.
    return f"nrb-v-{server}"[:15]


def join(runner: Runner, lab_ns: str, bridge: str, ns: str, cfg: Config, server: str) -> None:
    """A replica server's namespace ns (cfg: the config as it serves it),
    linked to the lab's bridge by a veth pair whose inner end carries its
    interface name and address: two hosts on one segment."""
    net = ipaddress.IPv4Network(cfg.network.subnet)
    outer = veth_name(server)
    runner.run(["ip", "netns", "add", ns])
    runner.run(["ip", "-n", ns, "link", "set", "lo", "up"])
    runner.run(["ip", "-n", lab_ns, "link", "add", outer, "type", "veth",
                "peer", "name", cfg.server.interface, "netns", ns])
    runner.run(["ip", "-n", lab_ns, "link", "set", outer, "master", bridge])
    runner.run(["ip", "-n", lab_ns, "link", "set", outer, "up"])
    runner.run(["ip", "-n", ns, "addr", "add", f"{cfg.server.address}/{net.prefixlen}", "dev", cfg.server.interface])
    runner.run(["ip", "-n", ns, "link", "set", cfg.server.interface, "up"])
