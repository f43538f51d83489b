"""Attack 6 (file names): a long hostile name made the parser quadratic (10 s on 176 KB)."""

from __future__ import annotations

import pytest

from webhook.shared.filenames import MAX_FILE_NAME_LENGTH, FileNameError, parse_file_name

SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"


def test_a_176_kb_name_is_refused_by_length_naming_the_limit() -> None:
    hostile = f"{SID}_" + "a__uid_s_" * 20_000 + ".m3u8"
    with pytest.raises(FileNameError, match=f"at most {MAX_FILE_NAME_LENGTH} expected"):
        parse_file_name(hostile)


@pytest.mark.parametrize(
    "filler",
    ["a__uid_s_", "_1", "__uid_s_1__uid_e_", "_", "a"],
)
def test_hostile_names_at_the_cap_are_answered(filler: str) -> None:
    # Shapes that made the old backtracking parser try every split point.
    room = MAX_FILE_NAME_LENGTH - len(SID) - len("_.ts") - 1
    name = f"{SID}_" + (filler * room)[:room] + ".ts"
    try:
        parsed = parse_file_name(name)
    except FileNameError:
        return
    assert parsed.sid == SID


def test_ordinary_names_still_parse_the_same() -> None:
    parsed = parse_file_name(f"{SID}_class_1__uid_s_42__uid_e_video_20240101120000123.ts")
    assert (parsed.cname, parsed.uid, parsed.track) == ("class_1", "42", "video")
    composite = parse_file_name(f"{SID}_class_1_2_3.m3u8")
    assert (composite.cname, composite.backup_tick, composite.backup_index) == ("class_1", 2, 3)
