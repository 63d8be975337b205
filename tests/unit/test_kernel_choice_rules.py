"""root.kernel: which kernel the nodes boot, resolved against a root on disk (no processes)."""
from __future__ import annotations

import pytest

from nfsroot_builder import config as config_mod
from nfsroot_builder import kernels
from nfsroot_builder.errors import ConfigError
from nfsroot_builder.steps.root_packages import wanted

STOCK, OLD = "6.12.57+deb13-amd64", "6.1.0-57-amd64"


def install(root, package: str, release: str | None, depends: str = "") -> None:
    """A package as dpkg records it: its status record and file list."""
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True, exist_ok=True)
    (root / "boot").mkdir(exist_ok=True)
    files = ["/boot"]
    if release:
        (root / "boot" / f"vmlinuz-{release}").write_text("kernel")
        files.append(f"/boot/vmlinuz-{release}")
    (info / f"{package}.list").write_text("\n".join(files) + "\n")
    status = root / "var/lib/dpkg/status"
    record = f"Package: {package}\nStatus: install ok installed\nVersion: 1\n"
    record += f"Depends: {depends}\n" if depends else ""
    status.write_text((status.read_text() + "\n" if status.exists() else "") + record)


@pytest.fixture
def root(tmp_path):
    install(tmp_path, f"linux-image-{STOCK}", STOCK)
    install(tmp_path, "linux-image-amd64", None, depends=f"linux-image-{STOCK} (= 6.12.57-1)")
    install(tmp_path, f"linux-image-{OLD}", OLD, depends="kmod, linux-base (>= 4.3~)")
    return tmp_path


def test_newest_is_the_default(root):
    assert kernels.boot_kernel(root, "newest") == STOCK


def test_release_names_an_older_kernel(root):
    assert kernels.boot_kernel(root, OLD) == OLD
    assert kernels.boot_kernel(root, "6.1.0-99-amd64") is None


def test_package_and_metapackage(root):
    assert kernels.boot_kernel(root, f"linux-image-{OLD}") == OLD
    # The metapackage ships no kernel: the linux-image-* it depends on does.
    assert kernels.boot_kernel(root, "linux-image-amd64") == STOCK
    assert kernels.boot_kernel(root, "linux-image-rt-amd64") is None


def test_missing_kernel_message_names_what_the_root_has(root):
    msg = kernels.describe_missing(root, "6.1.0-99-amd64")
    assert "6.1.0-99-amd64" in msg and OLD in msg and STOCK in msg


@pytest.mark.parametrize("spec, expected", [
    ("newest", None), (OLD, f"linux-image-{OLD}"), ("linux-image-rt-amd64", "linux-image-rt-amd64")])
def test_package_to_install_from_the_archive(spec, expected):
    assert kernels.package_to_install(spec, []) == expected


def test_a_local_deb_shipping_the_kernel_is_not_fetched(monkeypatch):
    monkeypatch.setattr(kernels, "deb_package", lambda path: f"linux-image-{OLD}")
    assert kernels.package_to_install(OLD, ["/srv/debs/k.deb"]) is None
    assert kernels.package_to_install(f"linux-image-{OLD}", ["/srv/debs/k.deb"]) is None
    assert kernels.package_to_install("6.1.0-58-amd64", ["/srv/debs/k.deb"]) == "linux-image-6.1.0-58-amd64"


def test_deb_package_of_a_missing_file_is_none(tmp_path):
    assert kernels.deb_package(str(tmp_path / "none.deb")) is None
    (tmp_path / "bad.deb").write_bytes(b"not an ar archive")
    assert kernels.deb_package(str(tmp_path / "bad.deb")) is None


def test_the_chosen_kernel_package_is_installed(seed_text, tmp_path):
    cfg = config_mod.parse(seed_text.replace("[root]\n", f'[root]\nkernel = "{OLD}"\n', 1))

    class Ctx:
        config = cfg
    assert f"linux-image-{OLD}" in wanted(Ctx)


@pytest.mark.parametrize("bad", ["6.1 amd64", "Linux-Image", "newest!", ""])
def test_bad_kernel_names_the_field(seed_text, bad):
    with pytest.raises(ConfigError) as exc:
        config_mod.parse(seed_text.replace("[root]\n", f'[root]\nkernel = "{bad}"\n', 1))
    assert exc.value.exit_code == 2
    assert "root.kernel" in dict(exc.value.problems)


def test_fingerprints_name_root_kernel_only_when_set(seed_text, tmp_path):
    """A build made before root.kernel existed keeps its fingerprints (default: no key)."""
    from nfsroot_builder import session
    from nfsroot_builder.steps.initramfs import Initramfs
    from nfsroot_builder.steps.kernel_tftp import KernelToTftp

    from fakes import FakeRunner

    def prints(text):
        ctx = session.make_context(config_mod.parse(text), prefix=tmp_path / "stage", state_dir=tmp_path / "s",
                                   runner=FakeRunner(), emit=lambda line: None)
        return Initramfs().fingerprint(ctx), KernelToTftp().fingerprint(ctx)
    default = prints(seed_text)
    chosen = prints(seed_text.replace("[root]\n", f'[root]\nkernel = "{OLD}"\n', 1))
    assert all("root.kernel" not in fp for fp in default)
    assert all(fp["root.kernel"] == OLD for fp in chosen)
