"""Files only the lab needs: the NFS-Ganesha main config and the console
report unit it puts into the root."""
from __future__ import annotations

from ..config import Config
from ..render import Served, quote
from ..render.server import ganesha_exports

FACTS_UNIT = "nfsroot-build-lab-report.service"
FACTS_MARK = "NRB-LAB-REPORT"


def ganesha_conf(cfg: Config, served: Served, run_dir: str) -> str:
    """Core parameters for the lab's ganesha.nfsd, then the cluster's exports.

    NFSv3 because the Debian initramfs (klibc nfsmount) mounts v3 only; NLM
    off because the nodes mount with nolock; Graceless because a lab server
    that just started has no clients to wait 90 s for.
    """
    return (
        "NFS_CORE_PARAM {\n"
        "  Protocols = 3, 4;\n"
        "  Enable_NLM = false;\n"
        f"  Bind_addr = {cfg.server.address};\n"
        "  MNT_Port = 20048;\n"
        "}\n"
        "NFSv4 {\n"
        "  Graceless = true;\n"
        f"  RecoveryRoot = {quote(run_dir + '/ganesha-recovery')};\n"
        "}\n"
        "LOG { Default_Log_Level = EVENT; }\n"
        + ganesha_exports(cfg, served)
    )


FACTS_SCRIPT = r"""#!/bin/sh
# Written by nfsroot-build lab: one line of facts on the serial console, so
# the lab can check a node without logging in. Removed by `lab down`.
systemctl is-system-running --wait >/dev/null 2>&1
root=$(awk '$2 == "/" {print $3 "," $1}' /proc/mounts | tail -n 1)
var=$(awk '$2 == "/var" {print $3 "," $1}' /proc/mounts | tail -n 1)
failed=$(systemctl list-units --state=failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
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
echo "MARK host=$(hostname) root=$root var=${var:-none} failed=${failed:-none} $sbfacts state=$state" > /dev/ttyS0
""".replace("MARK", FACTS_MARK)

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
