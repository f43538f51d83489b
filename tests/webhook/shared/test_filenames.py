from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.shared.filenames import FileNameError, Layout, RecordingFile, Track, parse_file_name

SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
UTC_TEXT = "20190611073246073"
UTC_TIME = datetime(2019, 6, 11, 7, 32, 46, 73000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            f"{SID}_class-101__uid_s_123__uid_e_audio.m3u8",
            {"layout": "individual", "uid": "123", "track": "audio", "extension": "m3u8"},
        ),
        (
            f"{SID}_class-101__uid_s_123__uid_e_video_{UTC_TEXT}.ts",
            {"layout": "individual", "uid": "123", "track": "video", "utc": UTC_TIME},
        ),
        (
            f"{SID}_class-101__uid_s_123__uid_e_video_{UTC_TEXT}.webm",
            {"layout": "individual", "extension": "webm", "utc": UTC_TIME},
        ),
        (
            f"{SID}_class-101__uid_s_123__uid_e_video_{UTC_TEXT}.jpg",
            {"layout": "individual", "extension": "jpg", "track": "video", "utc": UTC_TIME},
        ),
        (f"{SID}_class-101.m3u8", {"layout": "composite", "uid": None, "track": None}),
        (f"{SID}_class-101_{UTC_TEXT}.ts", {"layout": "composite", "utc": UTC_TIME}),
        (f"{SID}_class-101_{UTC_TEXT}.webm", {"layout": "composite", "extension": "webm"}),
        (f"{SID}_class-101_0.mp4", {"layout": "composite", "index": 0, "utc": None}),
        (f"{SID}_class-101_12.mp4", {"index": 12}),
        (
            f"{SID}_class-101__uid_s_7__uid_e_av_{UTC_TEXT}.mp4",
            {"layout": "individual", "track": "av", "utc": UTC_TIME, "index": None},
        ),
        (f"{SID}_class-101__uid_s_7__uid_e_av.mpd", {"track": "av", "extension": "mpd"}),
    ],
)
def test_documented_forms(name: str, expected: dict[str, Any]) -> None:
    parsed = parse_file_name(name)

    assert parsed.sid == SID
    assert parsed.cname == "class-101"
    assert parsed.directory is None
    assert parsed.failover_index is None
    assert {key: getattr(parsed, key) for key in expected} == expected
    assert parsed.render() == name


def test_kinds_follow_the_extension() -> None:
    kinds = {
        ext: parse_file_name(name).kind
        for ext, name in {
            "m3u8": f"{SID}_c.m3u8",
            "ts": f"{SID}_c_{UTC_TEXT}.ts",
            "mp4": f"{SID}_c_0.mp4",
            "jpg": f"{SID}_c__uid_s_1__uid_e_video_{UTC_TEXT}.jpg",
        }.items()
    }

    assert kinds == {"m3u8": "playlist", "ts": "slice", "mp4": "mp4", "jpg": "screenshot"}


def test_docs_examples() -> None:
    slice_file = parse_file_name(
        "sid713476478245_cnameagora__uid_s_123__uid_e_video_20190920125142485.ts"
    )
    backup = parse_file_name(
        "sid713476478245_cnameagora__uid_s_123__uid_e_video_22194679897_3.m3u8"
    )
    failover = parse_file_name(f"bak0_sid_channel1__uid_s_123__uid_e_video_{UTC_TEXT}.jpg")

    assert (slice_file.sid, slice_file.cname, slice_file.uid) == (
        "sid713476478245", "cnameagora", "123"
    )
    assert slice_file.utc == datetime(2019, 9, 20, 12, 51, 42, 485000, tzinfo=UTC)
    assert (backup.backup_tick, backup.backup_index, backup.utc) == (22194679897, 3, None)
    assert (failover.failover_index, failover.sid, failover.cname) == (0, "sid", "channel1")


@pytest.mark.parametrize(
    "name",
    [
        f"bak2_{SID}_class-101.m3u8",
        f"bak2_{SID}_class-101_{UTC_TEXT}.ts",
        f"bak2_{SID}_class-101_3.mp4",
        f"bak2_{SID}_class-101__uid_s_5__uid_e_audio.m3u8",
    ],
)
def test_failover_prefix_on_every_form(name: str) -> None:
    parsed = parse_file_name(name)

    assert parsed.failover_index == 2
    assert parsed.sid == SID
    assert parsed.render() == name


def test_backup_suffix_on_composite_playlist() -> None:
    parsed = parse_file_name(f"{SID}_class-101_22194679897_0.m3u8")

    assert (parsed.cname, parsed.backup_tick, parsed.backup_index) == ("class-101", 22194679897, 0)


def test_backup_suffix_behind_failover_prefix_and_directory() -> None:
    name = f"rec/2024/bak1_{SID}_class-101__uid_s_9__uid_e_video_22194679897_4.m3u8"

    parsed = parse_file_name(name)

    assert parsed.directory == "rec/2024"
    assert parsed.failover_index == 1
    assert (parsed.backup_tick, parsed.backup_index) == (22194679897, 4)
    assert parsed.render() == name


def test_snapshot_key_with_prefix_directories() -> None:
    name = f"snapshots/class-101/{SID}_class-101__uid_s_100001__uid_e_video_{UTC_TEXT}.jpg"

    parsed = parse_file_name(name)

    assert parsed.directory == "snapshots/class-101"
    assert parsed.file_name == name.rsplit("/", 1)[1]
    assert parsed.uid == "100001"


def test_underscored_cnames() -> None:
    individual = parse_file_name(f"{SID}_my_class_1__uid_s_5__uid_e_audio_{UTC_TEXT}.ts")
    composite_ts = parse_file_name(f"{SID}_my_class_{UTC_TEXT}.ts")
    composite_mp4 = parse_file_name(f"{SID}_my_class_2.mp4")

    assert individual.cname == "my_class_1"
    assert composite_ts.cname == "my_class"
    assert (composite_mp4.cname, composite_mp4.index) == ("my_class", 2)


def test_trailing_numbers_are_suffixes_unless_the_cname_is_given() -> None:
    name = f"{SID}_room_1_2.m3u8"

    guessed = parse_file_name(name)
    exact = parse_file_name(name, cname="room_1_2")

    assert (guessed.cname, guessed.backup_tick, guessed.backup_index) == ("room", 1, 2)
    assert (exact.cname, exact.backup_tick) == ("room_1_2", None)
    assert parse_file_name(f"{SID}_room_7_3.mp4", cname="room_7").index == 3


def test_cname_hint_accepts_the_web_recording_spelling() -> None:
    parsed = parse_file_name(f"{SID}_class-1-a_0.mp4", cname="class_1.a")

    assert parsed.cname == "class-1-a"


def test_to_dict_is_json_ready() -> None:
    parsed = parse_file_name(f"dir/bak0_{SID}_c__uid_s_1__uid_e_video_{UTC_TEXT}.jpg")

    data = json.loads(json.dumps(parsed.to_dict()))

    assert data["utc"] == "2019-06-11T07:32:46.073+00:00"
    assert data["utc_ms"] == 1560238366073
    assert data["kind"] == "screenshot"
    assert data["name"] == f"dir/bak0_{SID}_c__uid_s_1__uid_e_video_{UTC_TEXT}.jpg"
    assert data["failover_index"] == 0


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        ("", {}, "empty"),
        ("recordings/", {}, "empty"),
        (f"{SID}_class-101", {}, "no recording extension"),
        (f"{SID}_class-101.mov", {}, "no recording extension"),
        (f"{SID}_class-101.M3U8", {}, "no recording extension"),
        ("_class-101.m3u8", {}, "<sid>_"),
        (f"{SID}.m3u8", {}, "<sid>_"),
        (f"{SID}_.m3u8", {}, "does not match"),
        (f"{SID}_class-101.ts", {}, "_<YYYYMMDDhhmmssSSS>.ts"),
        (f"{SID}_class-101_2019.ts", {}, "does not match"),
        (f"{SID}_class-101.mp4", {}, "<cname>_<index>.mp4"),
        (f"{SID}_class-101_{UTC_TEXT}.jpg", {}, "not a composite recording file"),
        (f"{SID}_c__uid_s_1__uid_e_screen_{UTC_TEXT}.ts", {}, "__uid_e_<audio|video|av>"),
        (f"{SID}_c__uid_s___uid_e_audio.m3u8", {}, "does not match"),
        (f"{SID}_c__uid_s_1__uid_e_audio.ts", {}, "does not match"),
        (f"{SID}_c_20191311073246073.ts", {}, "not a valid YYYYMMDDhhmmssSSS"),
        (f"{SID}_class-101.m3u8", {"cname": "class-102"}, "channel name 'class-102'"),
        (f"{SID}_class-101.m3u8", {"cname": ""}, "channel name"),
    ],
)
def test_unparseable_names_say_why(name: str, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(FileNameError) as caught:
        parse_file_name(name, **kwargs)

    assert words in str(caught.value)


def test_inconsistent_parts_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="uid and track"):
        RecordingFile(sid=SID, cname="c", layout="individual", extension="ts")
    with pytest.raises(ValueError, match="go together"):
        RecordingFile(sid=SID, cname="c", layout="composite", extension="m3u8", backup_tick=1)


# --- property: render from parts, parse back, same parts ------------------------------------

# Agora's channel-name characters (64 bytes max); '.' and '_' included on purpose.
CNAME_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&()+-:;<=.>?@[]^_{|}~,"
)
sids = st.from_regex(r"[0-9a-f]{32}|sid[0-9]{6,15}", fullmatch=True)
cnames = st.text(CNAME_ALPHABET, min_size=1, max_size=64)
uids = st.integers(min_value=1, max_value=2**32 - 1).map(str)
utcs = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))
directories = st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), max_size=3).map(
    lambda segments: "/".join(segments) or None
)
small = st.integers(min_value=0, max_value=99)
LAYOUTS: tuple[Layout, ...] = ("individual", "composite")
TRACKS: tuple[Track, ...] = ("audio", "video", "av")


@st.composite
def recording_files(draw: st.DrawFn, cname: st.SearchStrategy[str] = cnames) -> RecordingFile:
    layout = draw(st.sampled_from(LAYOUTS))
    extension = draw(
        st.sampled_from(
            ["m3u8", "ts", "webm", "jpg", "mp4"] if layout == "individual"
            else ["m3u8", "ts", "webm", "mp4"]
        )
    )
    timed = extension in ("ts", "webm", "jpg") or (layout == "individual" and extension == "mp4")
    backed_up = extension == "m3u8" and draw(st.booleans())
    return RecordingFile(
        sid=draw(sids),
        cname=draw(cname),
        layout=layout,
        extension=extension,
        directory=draw(directories),
        uid=draw(uids) if layout == "individual" else None,
        track=(
            draw(st.sampled_from(TRACKS)) if layout == "individual" else None
        ),
        utc=draw(utcs) if timed else None,
        index=draw(small) if layout == "composite" and extension == "mp4" else None,
        failover_index=draw(st.none() | small),
        backup_tick=draw(st.integers(0, 10**12)) if backed_up else None,
        backup_index=draw(small) if backed_up else None,
    )


def render(f: RecordingFile) -> str:
    """Agora's naming rules, written out independently of the module under test."""
    name = f"bak{f.failover_index}_" if f.failover_index is not None else ""
    name += f"{f.sid}_{f.cname}"
    if f.layout == "individual":
        name += f"__uid_s_{f.uid}__uid_e_{f.track}"
    if f.utc is not None:
        name += "_" + f.utc.strftime("%Y%m%d%H%M%S") + f"{f.utc.microsecond // 1000:03d}"
    if f.index is not None:
        name += f"_{f.index}"
    if f.backup_tick is not None:
        name += f"_{f.backup_tick}_{f.backup_index}"
    name += "." + f.extension
    return f"{f.directory}/{name}" if f.directory else name


@given(recording_files())
def test_property_round_trip_with_the_known_cname(original: RecordingFile) -> None:
    name = render(original)

    assert parse_file_name(name, cname=original.cname) == original
    assert original.render() == name


# Without the hint a cname must not end in "_<digits>" (read as a suffix) nor contain the
# individual-layout marker: the documented ambiguity.
unambiguous_cnames = cnames.filter(
    lambda c: not re.search(r"_\d+$", c) and "__uid_" not in c
)


@given(recording_files(cname=unambiguous_cnames))
def test_property_round_trip_without_the_cname(original: RecordingFile) -> None:
    assert parse_file_name(render(original)) == original
