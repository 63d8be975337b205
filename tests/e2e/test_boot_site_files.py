"""root.files and root.hooks booted (issue 11, point 4): on the shared
per-node build (`deb`, iPXE), a site tree brings a file, a systemd unit and
a file for n1's own /var; a hook enables the unit. n1 boots the new version
and the unit prints both files on the serial console. n2 boots beside it
(dhcpd, iPXE): its /var is its own export, <root>.nodes/n2, whatever the
version (this was test_lab_boot's test_per_node_var_with_ipxe, a boot of
its own)."""
from __future__ import annotations

from helpers import console_unit, nfsroot_build
from test_lab_boot import SERVER, boot, edit_config, lab_up, report_times  # noqa: F401 (fixtures)
from versions_helpers import root_list

UNIT = console_unit("prints what root.files brought",
                    'echo "NRB-SITE $(cat /etc/site/hello) $(cat /var/lib/site/node-id)"')
HOOK = "#!/bin/sh\nset -e\nsystemctl enable nrb-site.service\n"


def test_node_boots_the_version_with_site_files_and_hook(deb, lab_up, edit_config, tmp_path):  # noqa: F811
    files = tmp_path / "site/files"
    (files / "etc/site").mkdir(parents=True)
    (files / "etc/site/hello").write_text("hello-from-the-site-tree\n")
    (files / "etc/systemd/system").mkdir(parents=True)
    (files / "etc/systemd/system/nrb-site.service").write_text(UNIT)
    (files / "nodes/n1/var/lib/site").mkdir(parents=True)
    (files / "nodes/n1/var/lib/site/node-id").write_text("n1-own-var\n")
    hook = tmp_path / "site/enable.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    edit_config(deb, "[root]\n", f'[root]\nfiles = "{files}"\nhooks = ["{hook}"]\n')
    nfsroot_build("all", "-c", deb.cfg, "--prefix", deb.stage, check=True)
    rows = root_list(deb)
    vid = next(v for v, r in rows.items() if r["state"] == "current")
    path = str(deb.stage) + rows[vid]["path"]
    lab_up(deb)
    res, results = boot(deb, "n1", "n2")
    report_times(res)
    assert set(results) == {"n1", "n2"}, res.stderr
    for node, r in results.items():
        assert r["ok"], f"{node}: {r['problem']}\n" + "\n".join(r["tail"]) + res.stderr
        assert r["hostname"] == node and r["facts"]["failed"] == "none", r
        assert r["facts"]["version"] == vid, r["facts"]
        assert r["facts"]["root"] in (f"nfs,{SERVER}:{path}", f"nfs4,{SERVER}:{path}"), r["facts"]
        # The node's own export (<root>.nodes/<node>) is its /var.
        assert r["facts"]["var"] == f"nfs,{SERVER}:{deb.root}.nodes/{node}", r["facts"]
    console = (deb.stage / f"var/lib/nfsroot-build/{deb.name}/lab/consoles/n1.log").read_text(errors="replace")
    assert "NRB-SITE hello-from-the-site-tree n1-own-var" in console, console[-3000:]
