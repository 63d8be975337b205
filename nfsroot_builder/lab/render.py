"""Files only the lab needs: the NFS-Ganesha main config and the console
report unit it puts into the root."""
from __future__ import annotations

from ..config import Config
from ..render import Served, quote
from ..render.server import ganesha_exports

FACTS_UNIT = "nfsroot-build-lab-report.service"
FACTS_MARK = "NRB-LAB-REPORT"


def ganesha_conf(cfg: Config, served: Served, run_dir: str, roots=None, group_roots=()) -> str:
    """Core parameters for the lab's ganesha.nfsd, then the cluster's exports.

    NFSv3 because the Debian initramfs (klibc nfsmount) mounts v3 only; NLM
    off because the nodes mount with nolock; Graceless because a lab server
    that just started has no clients to wait 90 s for. RQUOTA off: nodes
    need no quota RPC, and its default port (875, ganesha-core-config(8)
    Rquota_Port) lies in the range root's RPC clients bind to
    (bindresvport(3)). In one CI run ganesha exited with "Cannot bind
    RQUOTA tcp6 socket ... Address already in use" in a fresh namespace
    where only the lab's own `rpcinfo` probes, run as root, had used TCP.
    """
    return (
        "NFS_CORE_PARAM {\n"
        "  Protocols = 3, 4;\n"
        "  Enable_NLM = false;\n"
        "  Enable_RQUOTA = false;\n"
        f"  Bind_addr = {cfg.server.address};\n"
        "  MNT_Port = 20048;\n"
        "}\n"
        "NFSv4 {\n"
        "  Graceless = true;\n"
        f"  RecoveryRoot = {quote(run_dir + '/ganesha-recovery')};\n"
        "}\n"
        "LOG { Default_Log_Level = EVENT; }\n"
        + ganesha_exports(cfg, served, roots, group_roots)
    )


HEARTBEAT_MARK = FACTS_MARK + "-HEARTBEAT"

FACTS_SCRIPT = r"""#!/bin/sh
# Written by nfsroot-build lab: one line of facts on the serial console, so
# the lab can check a node without logging in. Removed by `lab down`.
systemctl is-system-running --wait >/dev/null 2>&1
root=$(awk '$2 == "/" {print $3 "," $1}' /proc/mounts | tail -n 1)
var=$(awk '$2 == "/var" {print $3 "," $1}' /proc/mounts | tail -n 1)
# NFS mounts of any kind: none on a node in RAM-image mode (root.serve = "image").
nfs=$(awk '$3 ~ /^nfs/' /proc/mounts | wc -l)
failed=$(systemctl list-units --state=failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
version=$(cat /etc/nfsroot-build/version 2>/dev/null)
# RAM-image mode: the URL live-boot fetched / from (live-boot(7), fetch=): it
# names the server the node booted from, as root= does over NFS.
fetch=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^fetch=//p')
pkgs=$(dpkg-query -W -f '${db:Status-Abbrev}\n' 2>/dev/null | grep -c '^ii')
# The SecureBoot EFI variable: 4 bytes of attributes, then 1 (on) or 0 (off);
# absent without UEFI (efivarfs(5); the GUID is EFI_GLOBAL_VARIABLE, UEFI spec 3.3).
# efivarfs is a module in Debian's kernel and nothing in a minimal root
# mounts it: mount it to read the variable (the kernel loads the module).
sb=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
# Else the kernel's own word: it logs the state the EFI stub found at boot
# (arch/x86/kernel/setup.c, "secureboot: Secure boot enabled").
sbfrom=efivar
if [ -d /sys/firmware/efi ] && [ ! -r $sb ]; then
  why=$(modprobe efivarfs 2>&1; mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>&1)
  [ -r $sb ] || sbfrom="kernel($(echo "$why" | tr -s ' \n' '__' | cut -c1-80))"
fi
if [ -r $sb ]; then
  case $(od -An -tu1 -j4 -N1 $sb | tr -d ' ') in 1) secureboot=on ;; *) secureboot=off ;; esac
elif dmesg 2>/dev/null | grep -q "secureboot: Secure boot enabled"; then
  secureboot=on
elif [ -d /sys/firmware/efi ]; then
  secureboot=off
else
  secureboot=none sbfrom=none
fi
printf '\n' > /dev/ttyS0
state=$(systemctl is-system-running)
sbfacts="secureboot=$secureboot sbfrom=$sbfrom"
echo "MARK host=$(hostname) root=$root var=${var:-none} nfs=$nfs failed=${failed:-none} $sbfacts state=$state" \
  "version=${version:-none} fetch=${fetch:-none} pkgs=$pkgs kernel=$(uname -r)" \
  "getty=$(systemctl is-active serial-getty@ttyS0.service)" > /dev/ttyS0
# A heartbeat read from a file in the root, over NFS: it stops when the node
# loses its root (issue 10: a build or switch of another version must not).
n=0
while sleep 3; do
  n=$((n + 1))
  echo "HEARTBEAT $n $(cat /etc/nfsroot-build/version 2>/dev/null || echo lost)" > /dev/ttyS0
done
""".replace("MARK", FACTS_MARK).replace("HEARTBEAT", HEARTBEAT_MARK)

FACTS_UNIT_TEXT = """[Unit]
Description=nfsroot-build lab: report boot facts on the serial console
ConditionPathExists=/dev/ttyS0

[Service]
# Type=exec, not oneshot: the script waits for the boot to finish, which a
# oneshot unit in the boot transaction would itself hold up.
Type=exec
ExecStart=/usr/local/sbin/nfsroot-build-lab-report

[Install]
WantedBy=multi-user.target
"""

# A sysvinit root (layout "seed"): init(8) reads /etc/inittab.d/*.tab after
# /etc/inittab, so this "once" entry starts after the runlevel's
# "l2:2:wait:/etc/init.d/rc 2" has finished: the boot is done.
FACTS_TAB = "nfsroot-build-lab-report.tab"
FACTS_TAB_TEXT = """# Written by nfsroot-build lab (inittab(5)); removed by `lab down`.
nrbl:2345:once:/usr/local/sbin/nfsroot-build-lab-report
"""
# Failed init scripts are judged from the console (nodes.judge): sysv-rc
# keeps no record of them.
FACTS_SYSV_SCRIPT = r"""#!/bin/sh
# Written by nfsroot-build lab: one line of facts on the serial console, so
# the lab can check a node without logging in. Removed by `lab down`.
m() { awk -v d="$1" '$2 == d {print $3 "," $1}' /proc/mounts | tail -n 1; }
rl=$(runlevel | tr ' ' ,)
link=$(readlink /etc/rcS.d/S35mountnfs)
printf '\n' > /dev/ttyS0
mounts="root=$(m /) var=$(m /var) tmp=$(m /tmp) roothome=$(m /root) dev=$(m /dev)"
echo "MARK host=$(cat /proc/sys/kernel/hostname) $mounts runlevel=$rl mountnfs=${link:-none}" > /dev/ttyS0
""".replace("MARK", FACTS_MARK)
