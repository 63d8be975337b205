"""node-var seeds each node's own /var beside the configured root.path: one
directory for all root versions (render.node_dir), also while version N >= 2,
whose root.path is <root.path>.v<N>, builds."""
from __future__ import annotations

from nfsroot_builder import config as config_mod
from nfsroot_builder import session, versions
from nfsroot_builder.render import node_dir
from nfsroot_builder.steps.node_var import NodeVar

from fakes import FakeRunner
from helpers import example_text


def test_a_later_version_seeds_the_directories_the_nodes_mount(tmp_path):
    cfg = config_mod.parse(example_text("lab").replace('layout = "tmpfs"', 'layout = "per-node"'))
    base = cfg.root.path
    v2 = cfg.model_copy(update={"root": cfg.root.model_copy(update={"path": versions.path_of(base, 2)})})
    for c in (cfg, v2):
        ctx = session.make_context(c, prefix=tmp_path / "stage", state_dir=tmp_path / "state",
                                   runner=FakeRunner(), emit=lambda line: None)
        assert [str(d) for d in NodeVar()._dirs(ctx)] == \
            [str(tmp_path / "stage") + f"{base}.nodes/{n.name}" for n in c.nodes]
        assert [ctx.served.path(f"{base}.nodes/{n.name}") for n in c.nodes] == \
            [node_dir(c, ctx.served, n.name) for n in c.nodes]
