"""boot.secure_boot: the config refuses what cannot boot under Secure Boot,
the signed chain is taken from the suite's .debs (index record, cache,
hash), the DHCP config and GRUB's menu point along the chain, and the lab
fails a node that did not report Secure Boot on."""
from __future__ import annotations

import hashlib
import io
import struct
import tarfile

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import packages_index, session, signed_boot
from nfsroot_builder.errors import ConfigError, NfsrootError
from nfsroot_builder.lab.nodes import FATAL, NodeResult, judge
from nfsroot_builder.lab.render import FACTS_MARK, FACTS_SCRIPT
from nfsroot_builder.render import Served, menus
from nfsroot_builder.render import server as r

from helpers import example_text


def lab_text(secure=True, firmware="uefi") -> str:
    text = example_text("lab")
    if secure:
        text = text.replace("[boot]\n", "[boot]\nsecure_boot = true\n", 1)
    if firmware:
        text = text.replace("[[node]]\n", f'[[node]]\nfirmware = "{firmware}"\n')
    assert text.count("[boot]\nsecure_boot") == int(secure)
    return text


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(text)
    assert exc.value.exit_code == 2
    return dict(exc.value.problems)


def test_secure_boot_is_off_by_default_and_valid_with_uefi_nodes():
    assert config_mod.parse(example_text("lab")).boot.secure_boot is False
    cfg = config_mod.parse(lab_text())
    assert cfg.boot.secure_boot and all(n.firmware == "uefi" for n in cfg.nodes)


def test_bios_nodes_are_refused_by_name():
    found = problems(lab_text(firmware=None))
    assert set(found) == {"node[0].firmware", "node[1].firmware"}, found
    assert "no Secure Boot" in found["node[0].firmware"]


@pytest.mark.parametrize("old,new,field,words", [
    ('loader = "grub"', 'loader = "ipxe"', "boot.loader", "only Debian's signed GRUB"),
    ('loader = "grub"', 'loader = "pxegrub"', "boot.loader", "only Debian's signed GRUB"),
    ("[root]\n", '[root]\nkernel_package = "linux-image-6.12.38+deb13-amd64-unsigned"\n',
     "root.kernel_package", "not signed"),
    ("[root]\n", '[root]\narchitecture = "arm64"\n', "root.architecture", "amd64 only"),
])
def test_what_cannot_boot_signed_is_refused_by_field(old, new, field, words):
    text = lab_text()
    assert old in text
    found = problems(text.replace(old, new, 1))
    assert field in found and words in found[field], found


def test_secure_boot_problems_come_with_other_field_errors():
    text = lab_text().replace('loader = "grub"', 'loader = "ipxe"')
    found = problems(text.replace('[[node]]\n', '[[node]]\ncolour = "red"\n', 1))
    assert "boot.loader" in found and "node[0].colour" in found


def test_without_secure_boot_nothing_is_checked():
    config_mod.parse(lab_text(secure=False, firmware="bios"))


def test_dhcp_gives_uefi_nodes_shim_and_bios_nodes_grub(tmp_path):
    cfg = config_mod.parse(lab_text())
    assert r.boot_files(cfg) == (None, "boot/grub/i386-pc/core.0", "boot/shim/shimx64.efi")
    block = r.dhcpd_block(cfg, Served())
    # Option 93 is two bytes: a bare 7 would be the one-byte string 07.
    assert 'option nfsroot-build-client-arch = 00:07 or option nfsroot-build-client-arch = 00:09 {\n' \
           '    filename "boot/shim/shimx64.efi";' in block
    assert signed_boot.GRUB.tftp == "boot/shim/grubx64.efi"   # shim loads grubx64.efi from its own directory


def test_signed_grub_cfg_reads_the_nodes_own_menu():
    cfg = config_mod.parse(lab_text())
    text = menus.grub_signed_cfg(cfg)
    regexp = next(line for line in text.splitlines() if line.startswith("regexp "))
    assert '"$net_default_mac"' in regexp and regexp.count("([0-9a-f][0-9a-f])") == 6
    name = menus.grub_cfg_name(cfg.nodes[0])   # grub.cfg-01-52-54-00-...
    assert f'configfile "/boot/grub/{name[:len("grub.cfg-01-")]}$m1-$m2-$m3-$m4-$m5-$m6"' in text
    assert text.rstrip().endswith("reboot")


def pe(signature_size: int, magic: int = 0x20B) -> bytes:
    """A PE header with the certificate table (data directory 4) of that size."""
    head = bytearray(1024)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x80)
    head[0x80:0x84] = b"PE\0\0"
    optional = 0x80 + 24
    struct.pack_into("<H", head, optional, magic)
    directories = optional + (112 if magic == 0x20B else 96)
    struct.pack_into("<II", head, directories + 32, 0x4000 if signature_size else 0, signature_size)
    return bytes(head)


@pytest.mark.parametrize("data,signed", [
    (pe(0x2000), True), (pe(0), False), (pe(0x2000, magic=0x10B), True),
    (b"MZ" + bytes(100), False), (b"\x7fELF" + bytes(100), False),
])
def test_pe_signed(tmp_path, data, signed):
    (tmp_path / "vmlinuz").write_bytes(data)
    assert signed_boot.pe_signed(tmp_path / "vmlinuz") is signed


INDEX = b"""Package: shim-signed
Version: 1.40+15.7-1
Filename: pool/main/s/shim-signed/shim-signed_1.40+15.7-1_amd64.deb
SHA256: aa

Package: shim-signed-common
Version: 1.51
Filename: pool/main/s/shim-signed/shim-signed-common_1.51_all.deb
SHA256: bb

Package: shim-signed
Version: 1.51~1+deb13u1+16.1-2~deb13u1
Depends: mokutil
Filename: pool/main/s/shim-signed/shim-signed_1.51~1+deb13u1+16.1-2~deb13u1_amd64.deb
SHA256: cc
"""


def test_package_records_takes_the_newest_paragraph_of_exactly_that_name():
    found = packages_index.package_records(INDEX, ["shim-signed", "grub-efi-amd64-signed"])
    assert found["shim-signed"] == {"Version": "1.51~1+deb13u1+16.1-2~deb13u1", "SHA256": "cc",
                                    "Filename": "pool/main/s/shim-signed/shim-signed_1.51~1+deb13u1+16.1-2~deb13u1_amd64.deb"}
    assert found["grub-efi-amd64-signed"] is None


def ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def tar_xz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def deb(files: dict[str, bytes]) -> bytes:
    """A .deb as dpkg-deb builds it (ar: debian-binary, control.tar.xz, data.tar.xz)."""
    return (b"!<arch>\n" + ar_member("debian-binary", b"2.0\n") +
            ar_member("control.tar.xz", tar_xz({"control": b"Package: x\n"})) +
            ar_member("data.tar.xz", tar_xz(files)))


@pytest.fixture
def suite(monkeypatch, tmp_path):
    """A suite whose two .debs hold fake loaders; records what was fetched."""
    debs = {s.package: deb({s.member: f"signed {s.package}".encode()}) for s in signed_boot.CHAIN}
    recs = {p: {"Version": "1", "Filename": f"pool/main/x/{p}/{p}_1_amd64.deb",
                "SHA256": hashlib.sha256(d).hexdigest()} for p, d in debs.items()}
    fetched = []
    monkeypatch.setattr(packages_index, "records", lambda ctx, names: {n: recs[n] for n in names})

    def fetch(url):
        fetched.append(url)
        return next(d for p, d in debs.items() if url.endswith(f"{p}_1_amd64.deb"))
    monkeypatch.setattr(packages_index, "_fetch", fetch)
    monkeypatch.setattr(packages_index, "mirror", lambda ctx: "http://mirror.invalid/debian")
    return debs, recs, fetched


def context(tmp_path, dry_run=False):
    cfg = config_mod.parse(lab_text())
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", dry_run=dry_run)
    ctx.apt_cache = tmp_path / "cache/apt"   # never the host's shared cache
    ctx.apt_cache.mkdir(parents=True, exist_ok=True)
    return ctx


def test_chain_files_come_from_the_debs_and_are_cached_only_for_real(suite, tmp_path):
    debs, recs, fetched = suite
    files, versions = signed_boot.chain_files(context(tmp_path, dry_run=True))
    assert files == {"boot/shim/shimx64.efi": b"signed shim-signed",
                     "boot/shim/grubx64.efi": b"signed grub-efi-amd64-signed"}
    assert versions == {"shim-signed": "1", "grub-efi-amd64-signed": "1"}
    assert len(fetched) == 2
    ctx = context(tmp_path)
    assert not any(ctx.apt_cache.iterdir())          # the dry-run kept nothing
    signed_boot.chain_files(ctx)
    assert sorted(p.name for p in ctx.apt_cache.iterdir()) == sorted(f"{p}_1_amd64.deb" for p in debs)
    signed_boot.chain_files(ctx)
    assert len(fetched) == 4                          # the third time from the cache


def test_a_deb_that_does_not_match_the_index_is_refused(suite, tmp_path):
    debs, recs, fetched = suite
    recs["shim-signed"]["SHA256"] = "0" * 64
    with pytest.raises(NfsrootError, match="does not match the SHA256"):
        signed_boot.chain_files(context(tmp_path))


def report(secureboot: str) -> str:
    return (f"{FACTS_MARK} host=lab1 root=nfs,192.168.0.1:{{root}} var=none failed=none "
            f"secureboot={secureboot} state=running\n\nlab1 login: ")


@pytest.mark.parametrize("state,ok", [("on", True), ("off", False), ("none", False)])
def test_lab_fails_a_node_without_secure_boot(tmp_path, state, ok):
    from nfsroot_builder.lab import Lab
    lab = Lab(session.make_context(config_mod.parse(lab_text()), prefix=tmp_path / "stage"))
    node = lab.cfg.nodes[0]
    res = NodeResult(node.name)
    assert judge(lab, node, report(state).replace("{root}", str(lab.ctx.root)), res)
    assert res.ok is ok, res.problem
    assert ok or f"Secure Boot is {state}" in res.problem


def test_report_reads_the_secure_boot_variable_and_violations_fail_fast():
    assert "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c" in FACTS_SCRIPT and "secureboot=$secureboot" in FACTS_SCRIPT
    assert FATAL.search("Verification failed: (0x1A) Security Violation")
    assert FATAL.search("error: bad shim signature.")


def test_lab_gives_a_secure_boot_node_ovmf_with_microsofts_keys_and_smm(tmp_path):
    from nfsroot_builder.lab.nodes import OVMF_SECURE_CODE, OVMF_SECURE_VARS, firmware, qemu_argv
    fw = firmware("uefi", tmp_path / "n1.vars.fd", secure_boot=True)
    argv = qemu_argv("n1", "52:54:00:12:34:01", "nrb-tap0", tmp_path / "c.log", "tcg", fw)
    text = " ".join(argv)
    assert f"readonly=on,file={OVMF_SECURE_CODE}" in text and fw.vars_template == OVMF_SECURE_VARS
    assert "-machine q35,smm=on" in text and "-global driver=cfi.pflash01,property=secure,value=on" in text
    plain = firmware("uefi", tmp_path / "n1.vars.fd")
    assert "-machine" not in plain.argv and "secboot" not in " ".join(plain.argv)
    assert firmware("bios", tmp_path / "v.fd", secure_boot=True) == firmware("bios", tmp_path / "v.fd")
