#!/bin/sh
# Run inside the server VM by its nrb-driver unit (tests/production/servervm.py),
# with stdout and stderr in /mnt/out/drive.log. It does what docs/server.md
# tells an admin, as root, without --prefix; every result goes to /mnt/out.
# Phase 2 (undo) starts when the test creates /mnt/ctl/undo.
out=/mnt/out
phase() { echo "$1 $(date +%s.%N)" >> $out/phases; echo "nrb-driver: $1" > /dev/ttyS0; }
result() { echo "$2" > "$out/rc.$1"; }
# Every file and symlink under /etc with its content's hash, and the symlink's target.
etc_sums() {
    find /etc -xdev \( -type f -o -type l \) -printf '%y %m %p -> %l\n' | sort > "$1"
    find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum >> "$1"
}
phase started

# docs/server.md, 1. Install the tool (a site without Internet: a wheelhouse).
python3 -m venv /opt/nfsroot-build
/opt/nfsroot-build/bin/pip install --no-index --find-links /mnt/wheels nfsroot-build
result install $?
ln -s /opt/nfsroot-build/bin/nfsroot-build /usr/local/sbin/nfsroot-build
nfsroot-build --version
phase installed

# 3. The config.
mkdir -p /etc/nfsroot-build
cp /mnt/ctl/cluster.toml /etc/nfsroot-build/cluster.toml
etc_sums $out/etc-before
systemctl is-active isc-dhcp-server tftpd-hpa nfs-server > $out/active-before

# 4. Check, look, build.
nfsroot-build check > $out/check.txt 2>&1
result check $?
phase checked
nfsroot-build all --dry-run > $out/dry-run.txt 2> $out/dry-run.err
result dry-run $?
phase dry-run
nfsroot-build all
rc=$?
result all $rc
# A failed step's own log, for the test's report (the error names it; `last` is the run's).
[ $rc -eq 0 ] || cat $(ls -t /var/lib/nfsroot-build/*/logs/last/*.log | head -1) > $out/failed-step.log 2>&1
phase all
systemctl is-active isc-dhcp-server tftpd-hpa nfs-server > $out/active
exportfs -v > $out/exports 2>&1
ip -br addr > $out/addresses

# The lab's report unit in the root: one line of facts on each node's console
# (what `nfsroot-build lab up` adds under a prefix).
/opt/nfsroot-build/bin/python3 - <<'EOF'
from pathlib import Path
from nfsroot_builder import config
from nfsroot_builder.lab.render import FACTS_SCRIPT, FACTS_UNIT, FACTS_UNIT_TEXT
root = Path(config.load(Path("/etc/nfsroot-build/cluster.toml")).root.path)
script = root / "usr/local/sbin/nfsroot-build-lab-report"
script.parent.mkdir(parents=True, exist_ok=True)
script.write_text(FACTS_SCRIPT)
script.chmod(0o755)
(root / "etc/systemd/system" / FACTS_UNIT).write_text(FACTS_UNIT_TEXT)
wants = root / "etc/systemd/system/multi-user.target.wants" / FACTS_UNIT
wants.parent.mkdir(parents=True, exist_ok=True)
wants.symlink_to(f"/etc/systemd/system/{FACTS_UNIT}")
EOF
result report-unit $?
sync
phase ready-for-nodes
touch $out/ready

ls -lR /srv/tftp > $out/tftp-files 2>&1

while [ ! -e /mnt/ctl/undo ]; do sleep 2; done
phase undo-start
# What the daemons said while the nodes booted (a failed boot is read from here).
journalctl --no-pager -u isc-dhcp-server -u tftpd-hpa -u nfs-server -u nfs-mountd > $out/journal 2>&1
nfsroot-build undo > $out/undo.txt 2>&1
result undo $?
cat $out/undo.txt
phase undo
etc_sums $out/etc-after
systemctl is-active isc-dhcp-server tftpd-hpa nfs-server > $out/active-after-undo
sync
touch $out/done
phase done
