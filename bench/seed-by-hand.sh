#!/bin/sh
# The seed page's procedure ("Kerrighed NFSROOT", 2008), typed in literally,
# for today's Debian: the baseline nfsroot-build's full build is compared to.
#
#   seed-by-hand.sh PREFIX CACHE MIRROR SUITE
#
# PREFIX  staging tree: the root is PREFIX/NFSROOT/kerrighed, the TFTP root
#         PREFIX/srv/tftp, the server files PREFIX/etc/...
# CACHE   the .deb cache (debootstrap --cache-dir, and bound on the chroot's
#         /var/cache/apt/archives for apt-get): the same cache state
#         nfsroot-build gets (empty = cold, filled by an earlier run = warm)
# MIRROR  the Debian mirror URL (the harness reads the host's apt sources)
# SUITE   e.g. bookworm (the page said sid)
#
# What is literal: debootstrap with its default variant; chroot; passwd
# (via chpasswd: no terminal here); mount -t proc; apt-get install with
# apt's defaults (recommends on) of today's names for the page's packages
# (a kernel, initramfs-tools, nfs-common: dhcp3-common and nfsbooted no
# longer exist); fstab, the mountnfs symlink and /etc/hosts as on the page;
# initramfs.conf BOOT=nfs and update-initramfs; the copy to /srv/tftp and a
# GRUB menu per node; the page's dhcpd.conf, exports and tftpd defaults.
# What is added, and why: DEBIAN_FRONTEND=noninteractive (unattended), a
# policy-rc.d (no daemon may start in the chroot and outlive the script: the
# mounts must come off), the cache bind mount (same cache state as
# nfsroot-build) and the clean-up of every mount on exit.
set -eu

PREFIX=$1 CACHE=$2 MIRROR=$3 SUITE=$4
NFSROOT=$PREFIX/NFSROOT/kerrighed
TFTP=$PREFIX/srv/tftp
SERVER=192.168.0.1
NODES="ssi1:192.168.0.101 ssi2:192.168.0.102"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

cleanup() {
    for m in var/cache/apt/archives proc; do
        if mountpoint -q "$NFSROOT/$m" 2>/dev/null; then
            umount "$NFSROOT/$m" || umount -l "$NFSROOT/$m"
        fi
    done
}
trap cleanup EXIT
# Phase marks for the harness (where the time goes); not part of the procedure.
phase() { echo "@@phase $1 $(date +%s.%N)" >&2; }
trap 'exit 130' INT TERM

phase server-configs
# --- Configure the server (files only: a staging prefix, nothing restarted)
mkdir -p "$PREFIX/etc/default" "$PREFIX/etc/dhcp" "$TFTP"
cat > "$PREFIX/etc/default/tftpd-hpa" <<EOT
RUN_DAEMON="yes"
TFTP_OPTIONS="-l -s"
TFTP_DIRECTORY="$TFTP"
EOT
{
    cat <<EOT
option grub-menu code 150 = string;
option dhcp-max-message-size 2048;
use-host-decl-names on;
deny unknown-clients;
deny bootp;
option domain-name "mycluster.home";
subnet 192.168.0.0 netmask 255.255.255.0 {
 option routers $SERVER;
 option broadcast-address 192.168.0.255;
}
group {
 filename "/pxegrub";
 option grub-menu = concat("(nd)/grub/", host-decl-name);
 option root-path "$NFSROOT";
EOT
    i=1
    for n in $NODES; do
        printf ' host %s { fixed-address %s; hardware ethernet 52:54:00:00:00:%02x; }\n' "${n%%:*}" "${n#*:}" $i
        i=$((i + 1))
    done
    echo "}"
} > "$PREFIX/etc/dhcp/dhcpd.conf"
cat > "$PREFIX/etc/exports" <<EOT
$NFSROOT *(ro,async,no_root_squash,no_subtree_check)
$NFSROOT/tmp *(rw,sync,no_root_squash,no_subtree_check)
$NFSROOT/var *(rw,sync,no_root_squash,no_subtree_check)
$NFSROOT/dev *(rw,sync,no_root_squash,no_subtree_check)
$NFSROOT/root *(rw,sync,no_root_squash,no_subtree_check)
EOT

phase debootstrap
# --- Create the base system
mkdir -p "$PREFIX/NFSROOT"
mkdir -p "$CACHE"
debootstrap --cache-dir="$CACHE" "$SUITE" "$NFSROOT" "$MIRROR"

phase chroot-setup
# chroot /NFSROOT/kerrighed; passwd
echo 'root:kerrighed' | chroot "$NFSROOT" chpasswd
# mount -t proc none /proc
mount -t proc none "$NFSROOT/proc"
mount --bind "$CACHE" "$NFSROOT/var/cache/apt/archives"
printf '#!/bin/sh\nexit 101\n' > "$NFSROOT/usr/sbin/policy-rc.d"
chmod 755 "$NFSROOT/usr/sbin/policy-rc.d"
phase apt-get-install
# apt-get install dhcp3-common nfs-common nfsbooted; apt-get install initramfs-tools
chroot "$NFSROOT" apt-get install -y linux-image-amd64 initramfs-tools nfs-common

phase root-files
# Edit fstab
cat > "$NFSROOT/etc/fstab" <<EOT
none        /proc  proc   defaults      0 0
none        /sys sysfs    defaults      0 0
$SERVER:/NFSROOT/kerrighed/dev  /dev  nfs rw,hard,nolock 0 0
$SERVER:/NFSROOT/kerrighed/var  /var  nfs rw,hard,nolock 0 0
$SERVER:/NFSROOT/kerrighed/tmp  /tmp  nfs rw,hard,nolock 0 0
$SERVER:/NFSROOT/kerrighed/root /root nfs rw,hard,nolock 0 0
none                             /var/run tmpfs defaults     0 0
EOT
# ln -sf ../network/if-up.d/mountnfs /etc/rcS.d/S35mountnfs
mkdir -p "$NFSROOT/etc/rcS.d"
ln -sf ../network/if-up.d/mountnfs "$NFSROOT/etc/rcS.d/S35mountnfs"
# Edit /etc/hosts
{
    printf '127.0.0.1 localhost.localdomain localhost\n\n%s    server.mycluster.home server\n' $SERVER
    for n in $NODES; do
        printf '%s  %s.mycluster.home %s\n' "${n#*:}" "${n%%:*}" "${n%%:*}"
    done
} > "$NFSROOT/etc/hosts"
phase update-initramfs
# Create a ramdisk image with network support (initramfs.conf)
sed -i 's/^BOOT=.*/BOOT=nfs/' "$NFSROOT/etc/initramfs-tools/initramfs.conf"
chroot "$NFSROOT" update-initramfs -u -k all
rm -f "$NFSROOT/usr/sbin/policy-rc.d"
cleanup

phase copy-to-tftp
# --- Configure nodes boot
cp "$NFSROOT"/boot/vmlinuz-* "$NFSROOT"/boot/initrd.img-* "$TFTP"/
mkdir -p "$TFTP/grub"
kver=$(basename "$(ls "$NFSROOT"/boot/vmlinuz-* | tail -n 1)" | sed 's/^vmlinuz-//')
for n in $NODES; do
    cat > "$TFTP/grub/${n%%:*}" <<EOT
timeout 1

title Debian on my server
root (nd)
kernel /vmlinuz-$kver root=/dev/nfs ip=dhcp nfsroot=$SERVER:/NFSROOT/kerrighed
initrd /initrd.img-$kver
EOT
done
phase end
echo "seed-by-hand: done ($kver)"
