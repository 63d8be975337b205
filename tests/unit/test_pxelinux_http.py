"""PXELINUX menus and boot.transport "http": the renderers, the config
check that refuses what a loader cannot fetch, and the tftp-server step's
nginx drop-in (checked with nginx -t through the fake runner)."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import session
from nfsroot_builder.errors import ConfigError
from nfsroot_builder.render import Served
from nfsroot_builder.render import menus as M
from nfsroot_builder.render.http import nginx_dropin, nginx_main
from nfsroot_builder.render.server import dhcpd_block
from nfsroot_builder.steps.tftp import TftpServer

from fakes import FakeRunner
from helpers import require

IMAGES = M.Images("/kerrighed/vmlinuz-6.12.1", "/kerrighed/initrd.img-6.12.1")
DROPIN = "etc/nginx/conf.d/nfsroot-build-kerrighed.conf"


def boot(cfg, **update):
    return cfg.model_copy(update={"boot": cfg.boot.model_copy(update=update)})


def test_pxelinux_menu_per_mac_with_the_append_line_of_the_other_loaders(seed_config):
    cfg = boot(seed_config, loader="pxelinux")
    files = M.menu_files(cfg, Served("/stage"), IMAGES)
    text = files["pxelinux.cfg/01-52-54-00-00-00-02"]
    assert len(files) == 4
    assert "  KERNEL /kerrighed/vmlinuz-6.12.1\n  INITRD /kerrighed/initrd.img-6.12.1\n" in text
    assert f"  APPEND {M.kernel_cmdline(cfg, Served('/stage'), cfg.nodes[1])}\n" in text
    assert "DEFAULT nfsroot\nPROMPT 0\n" in text


def test_dhcp_gives_lpxelinux_to_bios_clients(seed_config):
    block = dhcpd_block(boot(seed_config, loader="pxelinux"), Served())
    assert 'filename "lpxelinux.0";' in block and 'filename "syslinux.efi";' in block


@pytest.mark.parametrize("loader,kernel,initrd", [
    ("grub", "linux (http,192.168.0.1)/kerrighed/vmlinuz-6.12.1 ", "initrd (http,192.168.0.1)/kerrighed/initrd.img"),
    ("ipxe", "kernel http://192.168.0.1/kerrighed/vmlinuz-6.12.1 initrd=initrd.img-6.12.1 ",
     "initrd http://192.168.0.1/kerrighed/initrd.img"),
    ("pxelinux", "KERNEL http://192.168.0.1/kerrighed/vmlinuz-6.12.1\n", "INITRD http://192.168.0.1/kerrighed/initrd"),
])
def test_http_menus_name_kernel_and_initrd_by_url(seed_config, loader, kernel, initrd):
    cfg = boot(seed_config, loader=loader, transport="http")
    text = next(iter(M.menu_files(cfg, Served(), IMAGES).values()))
    assert kernel in text and initrd in text
    assert ("insmod http\n" in text) == (loader == "grub")


def test_pxegrub_over_http_is_refused_naming_the_field(seed_text):
    text = seed_text.replace('loader = "grub"', 'loader = "pxegrub"\ntransport = "http"')
    assert 'transport = "http"' in text
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(text)
    assert exc.value.exit_code == 2
    problems = dict(exc.value.problems)
    assert "TFTP only" in problems["boot.transport"]


def test_unknown_transport_is_refused(seed_text):
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(seed_text.replace('loader = "grub"', 'loader = "grub"\ntransport = "ftp"'))
    assert "boot.transport" in dict(exc.value.problems)


def test_nginx_dropin_listens_on_the_server_address_and_serves_the_tftp_root(seed_config):
    text = nginx_dropin(seed_config, Served("/stage"))
    assert "listen 192.168.0.1:80;" in text and "root /stage/srv/tftp;" in text
    assert "limit_except GET { deny all; }" in text and "autoindex off;" in text
    main = nginx_main("/x/d.conf", "/w", "/w/access.log")
    assert "pid /w/nginx.pid;" in main and "include /x/d.conf;" in main
    assert "access_log /w/access.log nfsroot_build;" in main and "client_body_temp_path /w/" in main


def test_tftp_server_step_writes_the_dropin_checked_then_removes_it_on_tftp(tmp_path, seed_text):
    runner = FakeRunner()
    http = config_mod.parse(seed_text.replace('loader = "grub"', 'loader = "grub"\ntransport = "http"'))
    ctx = session.make_context(http, prefix=tmp_path / "stage", runner=runner)
    step = TftpServer()
    assert step.verify(ctx)
    result = step.run(ctx)
    assert "nginx" in result.restart
    # Staged: the test copy runs in a network namespace of its own.
    tests = [argv for argv in runner.executed if argv[:4] == ["unshare", "--net", "nginx", "-t"]]
    assert len(tests) == 1 and "-c" in tests[0]
    assert (tmp_path / "stage" / DROPIN).is_file() and step.verify(ctx) == []
    assert "nginx" not in step.run(ctx).restart
    (tmp_path / "stage" / DROPIN).write_text("# edited by hand\n")
    assert any("nginx" in p for p in step.verify(ctx))
    assert "nginx" in step.run(ctx).restart
    # Back to tftp: the drop-in goes, nginx is restarted without it.
    tftp = config_mod.parse(seed_text.replace('loader = "grub"', 'loader = "grub"'))
    ctx2 = session.make_context(tftp, prefix=tmp_path / "stage", runner=FakeRunner())
    ctx2.files.undo.replace(dict(ctx.files.record))
    assert step.fingerprint(ctx2) != step.fingerprint(ctx)
    assert TftpServer().run(ctx2).restart == {"nginx"}
    assert not (tmp_path / "stage" / DROPIN).exists()


def test_a_rejected_dropin_is_not_written(tmp_path, seed_text):
    runner = FakeRunner({"unshare --net nginx -t": (1, "", "nginx: [emerg] unknown directive\n")})
    http = config_mod.parse(seed_text.replace('loader = "grub"', 'loader = "grub"\ntransport = "http"'))
    ctx = session.make_context(http, prefix=tmp_path / "stage", runner=runner)
    with pytest.raises(Exception) as exc:
        TftpServer().run(ctx)
    assert "nginx -t" in str(exc.value)
    assert not (tmp_path / "stage" / DROPIN).exists()


def test_boot_loader_step_serves_pxelinux_from_the_host_packages(tmp_path, seed_text):
    from pathlib import Path

    from nfsroot_builder.steps.boot_loader import PXELINUX_FILES, BootLoader
    missing = [src for src in PXELINUX_FILES.values() if not Path(src).is_file()]
    require(not missing, f"not installed (scripts/install-system-deps installs them): {missing}")
    cfg = config_mod.parse(seed_text.replace('loader = "grub"', 'loader = "pxelinux"'))
    ctx = session.make_context(cfg, prefix=tmp_path / "stage", runner=FakeRunner())
    step = BootLoader()
    assert step.verify(ctx)
    assert step.run(ctx).changed
    tftp = tmp_path / "stage/srv/tftp"
    for name, src in PXELINUX_FILES.items():
        assert (tftp / name).read_bytes() == Path(src).read_bytes()
    assert "LOCALBOOT" in (tftp / "pxelinux.cfg/default").read_text()
    assert step.verify(ctx) == [] and not step.run(ctx).changed
    (tftp / "ldlinux.c32").write_bytes(b"another build")
    assert "ldlinux.c32" in step.verify(ctx)[0]
