"""Log.fingerprint (SCOUT_FORMAT §11.1) and the prov status colours."""

from __future__ import annotations

import hashlib

from scout_persist.cli.fingerprint import color, fingerprint, status_color, truncate_string
from scout_persist.rubyvalues import Symbol


def test_scalars():
    assert fingerprint(None) == "nil"
    assert fingerprint(True) == "true" and fingerprint(False) == "false"
    assert fingerprint(42) == "42"
    assert fingerprint(Symbol("sym")) == ":sym"
    assert fingerprint("a\nb") == "'a\\nb'"
    assert fingerprint("it's") == "'it's'"  # quotes are not escaped


def test_floats_have_no_integral_shortcut():
    assert fingerprint(2.0) == "2.000"
    assert fingerprint(0.5) == "0.500000"
    assert fingerprint(1e-7) == "0.000000"
    assert fingerprint(12.25) == "12.2"
    assert fingerprint(-3.14159) == "-3.142"


def test_arrays_and_maps():
    assert fingerprint([]) == "[]"
    assert fingerprint(["a", 1]) == "['a', 1]"
    items = [f"i{n}" for n in range(25)]
    assert fingerprint(items) == "[25--'i0','i1','i12','i23','i24']"
    assert fingerprint({}) == "{}"
    assert fingerprint({"a": 1, "b": [True]}) == "{'a'=>1 'b'=>[true]}"
    big = {f"k{n}": n for n in range(11)}
    keys = ", ".join(f"'k{n}'" for n in range(11))
    assert fingerprint(big) == "H:{[" + keys + "];[" + ", ".join(map(str, range(11))) + "]}"


def test_long_strings_are_cut_in_the_middle():
    s = "x" * 100 + "y" * 100
    out = truncate_string(s)
    mid = f"<...200 - {hashlib.md5(s.encode()).hexdigest()[:5]}...>"
    half = (150 - len(mid)) // 2
    assert out == "x" * (half - 1) + mid + "y" * half
    assert truncate_string("z" * 150) == "z" * 150
    assert fingerprint("a\n" * 100).startswith("'a\\na\\n")


def test_status_colours_follow_ruby():
    assert status_color("done") == "green" and status_color("noinfo") == "green"
    assert status_color("error") == "red" and status_color("unsync") == "red"
    assert status_color("setup") == "yellow"
    assert status_color("missing") == "blue"
    assert status_color("forced_status") == "cyan"
    assert color("magenta", "x") == "\x1b[35mx\x1b[0m" and color(None, "x") == "x"
