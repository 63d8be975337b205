"""root.extra_sources: a site's own signed file: repository feeds the build,
with mmdebstrap (the package is not in the suite, so root-packages installs it
after the bootstrap) and with debootstrap; a package no source has fails
`check` before anything changes."""
from __future__ import annotations

import pytest
from local_repo import use_repo

from nfsroot_builder.aptsources import EXTRA_SOURCES

from helpers import nfsroot_build, snapshot
from root_builds import installed, new_build, remove_stage


@pytest.mark.parametrize("bootstrapper", ["mmdebstrap", "debootstrap"])
def test_package_from_a_signed_file_repository(tmp_path_factory, probe_repo, bootstrapper):
    repo = probe_repo
    b = new_build(tmp_path_factory, f"xs-{bootstrapper[:2]}", bootstrapper=bootstrapper, layout="tmpfs",
                  loader="grub")
    try:
        # A name neither the suite nor the extra source has: check fails, naming it.
        use_repo(b, repo, '["iproute2", "nrb-absent"]')
        before = snapshot(b.stage) if b.stage.exists() else {}
        res = nfsroot_build("check", "-c", b.cfg, "--prefix", b.stage)
        out = res.stdout + res.stderr
        assert res.returncode == 1 and "nrb-absent" in out and "nor root.extra_sources" in out, out
        assert (snapshot(b.stage) if b.stage.exists() else {}) == before

        b.cfg.write_text(b.cfg.read_text().replace('"nrb-absent"', '"nrb-probe"'))
        nfsroot_build("all", "-c", b.cfg, "--prefix", b.stage, check=True)
        assert "nrb-probe\t1.0" in installed(b.root)
        sources = (b.root / EXTRA_SOURCES).read_text()
        assert f"URIs: file:{repo.dir}" in sources and "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----" in sources
        # The repository's mount point in the root is gone again, and nothing is mounted.
        assert not (b.root / str(repo.dir).lstrip("/")).exists()
        assert str(b.root) not in open("/proc/mounts").read()
        st = nfsroot_build("status", "-c", b.cfg, "--prefix", b.stage, "--json", check=True)
        assert '"stale"' not in st.stdout
    finally:
        remove_stage(b.stage)
