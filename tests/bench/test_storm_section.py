"""bench/storm.py's section of RESULTS.md: replaced in place by a new storm
run, carried over by `make bench`'s rewrite (pure text, no process)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from storm import BEGIN, END, section_of, with_section  # noqa: E402

OLD = f"{BEGIN}\n## Boot storm\nold figures\n{END}\n"
NEW = f"{BEGIN}\n## Boot storm\nnew figures\n{END}\n"


def test_a_new_storm_run_replaces_its_section_and_keeps_the_rest():
    text = "# Results\n\nrows\n\n" + OLD + "\n## after\n"
    assert with_section(text, NEW) == "# Results\n\nrows\n\n" + NEW + "\n## after\n"


def test_a_file_without_the_section_gets_it_appended():
    assert with_section("# Results\nrows\n", NEW) == "# Results\nrows\n\n" + NEW


def test_make_bench_carries_the_section_into_its_new_report():
    rewritten = with_section("# Results (new run)\n", section_of("# old\n\n" + OLD))
    assert rewritten == "# Results (new run)\n\n" + OLD
    # Nothing to carry: the new report as it is.
    assert with_section("# Results (new run)\n", section_of("# old, no storm\n")) == "# Results (new run)\n"
