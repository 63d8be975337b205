"""bench/report.py on made-up results: every verdict, ratio and name in the
report comes from the numbers it is given, none from fixed prose."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import report
from harness import Result


def meta(n=10000):
    return report.Meta(quick=False, started="2026-11-29 19:00 UTC", finished="19:40", machine=["- CPU: test"],
                       at_scale=n)


def full_builds(pairs, seed_phases=None, tool_phases=None):
    """The full-build rows as full_build.py records them, from (seed s, tool s) pairs."""
    out = {}
    for c in ("cold", "warm"):
        seed = Result(f"full-seed-{c}", f"seed {c}", times=[s for s, _ in pairs],
                      detail={"phases": seed_phases or {"debootstrap": 50.0, "apt-get-install": 25.0}})
        tool = Result(f"full-mmdebstrap-{c}", f"tool {c}", times=[t for _, t in pairs],
                      detail={"phases": tool_phases or {"bootstrap": 11.0, "root-packages": 20.0, "hosts": 0.0},
                              "pairs": [{"seed": s, "mmdebstrap": t, "first": "seed"} for s, t in pairs]})
        out.update({seed.key: seed, tool.key: tool})
    return out


def scale_rows(render_s, noop_s, phases=None, wall=None):
    return {
        "inventory-10000": Result("inventory-10000", "inventory", times=[render_s] * 3, peak_kb=80 * 1024,
                                  steps_ran=["dhcp-server", "node-menus"],
                                  detail={"observed_wall": wall or render_s,
                                          "phases": phases or {"node-menus": 0.2, "dhcp-server": 0.05}}),
        "noop-resume-10000": Result("noop-resume-10000", "noop", times=[noop_s] * 5, steps_ran=[]),
    }


def by_name(tgts):
    return {t.name.split(" (")[0] if t.unit == "×" else t.name: t for t in tgts}


def test_full_build_ratio_is_the_median_of_the_pairs():
    results = full_builds([(80.0, 20.0), (100.0, 40.0), (90.0, 27.0)])   # ratios 0.25, 0.40, 0.30
    t = by_name(report.targets(results, meta()))["full build ≤ 0.3× the seed by hand"]
    assert t.measured == 0.30 and t.met is True and t.verdict == "met"
    assert "0.25, 0.40, 0.30" in t.note
    results = full_builds([(80.0, 20.0), (100.0, 40.0), (90.0, 36.0)])   # 0.25, 0.40, 0.40
    t = by_name(report.targets(results, meta()))["full build ≤ 0.3× the seed by hand"]
    assert t.measured == 0.40 and t.met is False and t.verdict == "**missed**"


def test_scale_targets_judged_on_the_numbers():
    tgts = by_name(report.targets(scale_rows(0.8, 0.35), meta()))
    assert tgts["10,000-node render < 1 s"].met and tgts["no-op resume at 10,000 nodes < 0.4 s"].met
    assert tgts["10,000-node render < 150 MB"].measured == 80
    tgts = by_name(report.targets(scale_rows(1.5, 0.45), meta()))
    assert tgts["10,000-node render < 1 s"].met is False
    assert tgts["no-op resume at 10,000 nodes < 0.4 s"].met is False


def test_unmeasured_target_says_why_and_has_no_verdict():
    results = {"full-seed-cold": Result("full-seed-cold", "s", not_measured="--quick skips the full builds")}
    t = report.targets(results, meta())[0]
    assert t.measured is None and t.met is None and t.verdict == "-"
    assert t.why_not == "--quick skips the full builds"


def test_analysis_names_the_slowest_step_from_the_data():
    results = scale_rows(3.0, 0.3, phases={"node-menus": 0.4, "dhcp-server": 1.8, "hosts": 0.1}, wall=3.0)
    text = report.render(results, meta())
    section = text.split("## Missed targets")[1].split("## All results")[0]
    assert "10,000-node render < 1 s**: 3.00 s, 3.00× the limit; 2.00 s over it, a cut of 67% would meet it" \
        in section
    # dhcp-server is the slowest here, so it comes first, with its share of the wall time
    assert "slowest steps: dhcp-server 1.80 s (60%), node-menus 400 ms (13%), hosts 100 ms (3%)" in section
    assert "outside the steps" in section and "700 ms (23%)" in section
    # another split, another text
    results = scale_rows(3.0, 0.3, phases={"node-menus": 2.5}, wall=3.0)
    section = report.render(results, meta()).split("## Missed targets")[1]
    assert "slowest steps: node-menus 2.50 s (83%)" in section


def test_full_build_analysis_from_the_pairs():
    results = full_builds([(80.0, 40.0), (100.0, 45.0), (90.0, 40.5)],   # ratios 0.50, 0.45, 0.45
                          tool_phases={"bootstrap": 12.0, "root-packages": 25.0})
    text = report.render(results, meta())
    assert "| full build ≤ 0.3× the seed by hand (cold cache, median of alternating pairs) | 0.45× | **missed** |" \
        in text
    section = text.split("## Missed targets")[1].split("## All results")[0]
    assert "At the seed's median 90.0 s, the target is 27.0 s: nfsroot-build's median 40.5 s is 13.5 s too long." \
        in section
    assert "slowest steps: root-packages 25.0 s (62%), bootstrap 12.0 s (30%)" in section
    assert "seed by hand, slowest phases: debootstrap 50.0 s (56%), apt-get-install 25.0 s (28%)" in section
    assert "The pairs' ratios range 0.45–0.50." in section
    assert "pair 2 (seed first): seed 100.0 s, nfsroot-build 45.0 s, ratio 0.45" in text


def test_all_met_means_no_missed_section():
    results = {**full_builds([(100.0, 25.0)] * 3), **scale_rows(0.5, 0.2)}
    text = report.render(results, meta())
    assert "## Missed targets" not in text
    assert "5 of 5 measured targets met; 4 not measured." in text   # 2 ratios, render (s, MB), no-op


def test_figures_without_a_root_say_so():
    results = scale_rows(0.5, 0.2)
    m = meta()
    m.server_only = True
    tgts = by_name(report.targets(results, m))
    assert tgts["10,000-node render < 1 s"].note.startswith("server steps only")
    assert tgts["no-op resume at 10,000 nodes < 0.4 s"].note == "server steps only: no root was built in this run"
    assert tgts["10,000-node render < 150 MB"].note.startswith("server steps only")
    assert "server steps only" not in report.render(results, meta())
