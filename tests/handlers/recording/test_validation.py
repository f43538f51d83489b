"""Start/acquire/update validation: one case per documented constraint, plus property tests
(generated valid requests pass; one rule-breaking mutation is reported by path and rule)."""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.recording_requests import KINDS, STORAGE, valid_request

from handlers.recording.validation import (
    AcquireRequestInvalid,
    StartRequestInvalid,
    UpdateRequestInvalid,
    acquire_problems,
    start_problems,
    update_problems,
    validate_acquire,
    validate_start,
    validate_update,
)

CR = "clientRequest"
RC = f"{CR}.recordingConfig"
SC = f"{CR}.storageConfig"
WEB = f"{CR}.extensionServiceConfig.extensionServices[0].serviceParam"
TC = f"{RC}.transcodingConfig"
SNAP = f"{CR}.snapshotConfig"
RFC = f"{CR}.recordingFileConfig"

NON_WEB = ("individual", "screenshot_only", "screenshot_and_record", "mix")
INDIVIDUAL = ("individual", "screenshot_only", "screenshot_and_record")
SHOTS = ("screenshot_only", "screenshot_and_record")
RECORDING = ("individual", "mix", "web")


@dataclass(frozen=True)
class Body:
    """A mutable start request: top-level cname and uid, and the clientRequest."""

    mode: str
    top: dict[str, Any]
    cr: dict[str, Any]

    @property
    def rc(self) -> dict[str, Any]:
        value: dict[str, Any] = self.cr["recordingConfig"]
        return value

    @property
    def storage(self) -> dict[str, Any]:
        value: dict[str, Any] = self.cr["storageConfig"]
        return value

    @property
    def web(self) -> dict[str, Any]:
        value: dict[str, Any] = (
            self.cr["extensionServiceConfig"]["extensionServices"][0]["serviceParam"]
        )
        return value

    def problems(self) -> set[tuple[str, str]]:
        found = start_problems(self.mode, self.cr, cname=self.top["cname"], uid=self.top["uid"])
        return {(p.path, p.rule) for p in found}


def _body(kind: str) -> Body:
    mode, cr = valid_request(kind)
    return Body(mode, {"cname": "class-1", "uid": "527841"}, cr)


Mutation = Callable[[Body], tuple[str, str]]


def _set(getter: Callable[[Body], dict[str, Any]], key: str, value: Any, path: str,
         rule: str) -> Mutation:
    def apply(body: Body) -> tuple[str, str]:
        getter(body)[key] = value
        return path, rule
    return apply


def _drop(getter: Callable[[Body], dict[str, Any]], key: str, path: str) -> Mutation:
    def apply(body: Body) -> tuple[str, str]:
        getter(body).pop(key, None)
        return path, "required"
    return apply


def _top(b: Body) -> dict[str, Any]:
    return b.top


def _cr(b: Body) -> dict[str, Any]:
    return b.cr


def _rc(b: Body) -> dict[str, Any]:
    return b.rc


def _storage(b: Body) -> dict[str, Any]:
    return b.storage


def _web(b: Body) -> dict[str, Any]:
    return b.web


def _snap(b: Body) -> dict[str, Any]:
    value: dict[str, Any] = b.cr["snapshotConfig"]
    return value


def _tc(b: Body) -> dict[str, Any]:
    value: dict[str, Any] = b.rc["transcodingConfig"]
    return value


def _bad_prefix_element(body: Body) -> tuple[str, str]:
    prefix = body.storage.setdefault("fileNamePrefix", [])
    prefix.append("bad-dir")
    return f"{SC}.fileNamePrefix[{len(prefix) - 1}]", "charset"


def _both_audio_lists(body: Body) -> tuple[str, str]:
    body.rc["subscribeAudioUids"] = ["1001"]
    body.rc["unsubscribeAudioUids"] = ["1002"]
    return f"{RC}.unsubscribeAudioUids", "exclusive"


def _audio_without_video(body: Body) -> tuple[str, str]:
    body.rc["subscribeAudioUids"] = ["1001"]
    body.rc.pop("subscribeVideoUids", None)
    return f"{RC}.subscribeVideoUids", "snapshot"


def _too_many_uids(body: Body) -> tuple[str, str]:
    body.rc.pop("unsubscribeVideoUids", None)
    body.rc["subscribeVideoUids"] = [str(1000 + i) for i in range(33)]
    return f"{RC}.subscribeVideoUids", "max_entries"


def _bad_uid_entry(body: Body) -> tuple[str, str]:
    body.rc.pop("subscribeVideoUids", None)
    body.rc["unsubscribeVideoUids"] = ["abc"]
    return f"{RC}.unsubscribeVideoUids[0]", "uid"


def _allstream_not_alone(body: Body) -> tuple[str, str]:
    body.rc.pop("unsubscribeVideoUids", None)
    body.rc["subscribeVideoUids"] = ["#allstream#", "1001"]
    return f"{RC}.subscribeVideoUids[0]", "allstream"


def _video_list_audio_only(body: Body) -> tuple[str, str]:
    body.rc["streamTypes"] = 0
    body.rc.pop("unsubscribeVideoUids", None)
    body.rc["subscribeVideoUids"] = ["1001"]
    return f"{RC}.subscribeVideoUids", "stream_types"


def _original_with_video(body: Body) -> tuple[str, str]:
    body.rc["streamTypes"] = 2
    body.rc["streamMode"] = "original"
    return f"{RC}.streamMode", "stream_mode"


def _salt_missing(body: Body) -> tuple[str, str]:
    body.rc["decryptionMode"] = 7
    body.rc["secret"] = "channel-secret"
    body.rc.pop("salt", None)
    return f"{RC}.salt", "required"


def _layout_two_without_uid(body: Body) -> tuple[str, str]:
    _tc(body)["mixedVideoLayout"] = 2
    _tc(body).pop("maxResolutionUid", None)
    _tc(body).pop("layoutConfig", None)
    return f"{TC}.maxResolutionUid", "required"


def _too_many_regions(body: Body) -> tuple[str, str]:
    _tc(body)["mixedVideoLayout"] = 3
    _tc(body)["layoutConfig"] = [{"x_axis": 0.0, "y_axis": 0.0}] * 18
    return f"{TC}.layoutConfig", "max_entries"


def _big_canvas(body: Body) -> tuple[str, str]:
    _tc(body).update(width=1920, height=1088)
    return TC, "resolution"


def _big_page(body: Body) -> tuple[str, str]:
    body.web.update(videoWidth=2560, videoHeight=1440)
    return WEB, "resolution"


def _screenshot_only_with_empty_file_config(body: Body) -> tuple[str, str]:
    body.cr["recordingFileConfig"] = {}
    return RFC, "screenshot_only"


def _wrong_case(body: Body) -> tuple[str, str]:
    body.rc["maxidletime"] = 300
    return f"{RC}.maxidletime", "case"


def _sts_on_azure(body: Body) -> tuple[str, str]:
    body.storage.update(vendor=5, stsToken="sts")
    body.storage.pop("extensionParams", None)
    return f"{SC}.stsToken", "vendor"


def _s3_compatible_without_endpoint(body: Body) -> tuple[str, str]:
    body.storage["vendor"] = 11
    body.storage.pop("extensionParams", None)
    return f"{SC}.extensionParams.endpoint", "required"


# (name, kinds it applies to, mutation). Each breaks exactly one documented rule.
MUTATIONS: list[tuple[str, tuple[str, ...], Mutation]] = [
    ("uid zero", KINDS, _set(_top, "uid", "0", "uid", "uid")),
    ("uid above 2^32-1", KINDS, _set(_top, "uid", "4294967296", "uid", "uid")),
    ("uid as a number", KINDS, _set(_top, "uid", 527841, "uid", "uid")),
    ("uid with leading zero", KINDS, _set(_top, "uid", "0527841", "uid", "uid")),
    ("cname with slash", NON_WEB, _set(_top, "cname", "class/1", "cname", "cname")),
    ("cname of 64 bytes", NON_WEB, _set(_top, "cname", "c" * 64, "cname", "cname")),
    ("cname empty", KINDS, _set(_top, "cname", "", "cname", "cname")),
    ("web cname over 1024 bytes", ("web",), _set(_top, "cname", "w" * 1025, "cname", "cname")),
    ("storageConfig missing", KINDS, _drop(_cr, "storageConfig", SC)),
    ("vendor unknown", KINDS, _set(_storage, "vendor", 9, f"{SC}.vendor", "enum")),
    ("vendor missing", KINDS, _drop(_storage, "vendor", f"{SC}.vendor")),
    ("region missing", KINDS, _drop(_storage, "region", f"{SC}.region")),
    ("bucket missing", KINDS, _drop(_storage, "bucket", f"{SC}.bucket")),
    ("accessKey missing", KINDS, _drop(_storage, "accessKey", f"{SC}.accessKey")),
    ("secretKey empty", KINDS, _set(_storage, "secretKey", "", f"{SC}.secretKey", "required")),
    ("fileNamePrefix charset", KINDS, _bad_prefix_element),
    ("fileNamePrefix length", KINDS,
     _set(_storage, "fileNamePrefix", ["a" * 64, "b" * 63], f"{SC}.fileNamePrefix", "length")),
    ("stsToken on a vendor without STS", KINDS, _sts_on_azure),
    ("S3-compatible without endpoint", KINDS, _s3_compatible_without_endpoint),
    ("maxIdleTime below 5", NON_WEB, _set(_rc, "maxIdleTime", 4, f"{RC}.maxIdleTime", "range")),
    ("maxIdleTime above 30 days", NON_WEB,
     _set(_rc, "maxIdleTime", 2_592_001, f"{RC}.maxIdleTime", "range")),
    ("maxIdleTime not an integer", NON_WEB,
     _set(_rc, "maxIdleTime", "300", f"{RC}.maxIdleTime", "type")),
    ("channelType 2", NON_WEB, _set(_rc, "channelType", 2, f"{RC}.channelType", "enum")),
    ("channelType missing", NON_WEB, _drop(_rc, "channelType", f"{RC}.channelType")),
    ("streamTypes 3", NON_WEB, _set(_rc, "streamTypes", 3, f"{RC}.streamTypes", "enum")),
    ("videoStreamType 2", NON_WEB,
     _set(_rc, "videoStreamType", 2, f"{RC}.videoStreamType", "enum")),
    ("subscribeUidGroup missing", INDIVIDUAL,
     _drop(_rc, "subscribeUidGroup", f"{RC}.subscribeUidGroup")),
    ("subscribeUidGroup 6", NON_WEB,
     _set(_rc, "subscribeUidGroup", 6, f"{RC}.subscribeUidGroup", "enum")),
    ("more than 32 uids", NON_WEB, _too_many_uids),
    ("uid list entry not a uid", NON_WEB, _bad_uid_entry),
    ("#allstream# with other uids", NON_WEB, _allstream_not_alone),
    ("subscribe and unsubscribe audio", NON_WEB, _both_audio_lists),
    ("video list with audio-only streamTypes", ("individual", "mix"), _video_list_audio_only),
    ("streamMode original with video", ("individual",), _original_with_video),
    ("streamMode in mix", ("mix",), _set(_rc, "streamMode", "default", f"{RC}.streamMode",
                                         "mode")),
    ("audioProfile in individual", INDIVIDUAL,
     _set(_rc, "audioProfile", 1, f"{RC}.audioProfile", "mode")),
    ("decryption 7 without salt", NON_WEB, _salt_missing),
    ("wrong case field", NON_WEB, _wrong_case),
    ("snapshot with audio-only streamTypes", SHOTS,
     _set(_rc, "streamTypes", 0, f"{RC}.streamTypes", "snapshot")),
    ("snapshot audio list without video list", SHOTS, _audio_without_video),
    ("snapshot fileType png", SHOTS,
     _set(_snap, "fileType", ["png"], f"{SNAP}.fileType", "file_type")),
    ("snapshot fileType missing", SHOTS, _drop(_snap, "fileType", f"{SNAP}.fileType")),
    ("captureInterval 4", SHOTS,
     _set(_snap, "captureInterval", 4, f"{SNAP}.captureInterval", "range")),
    ("captureInterval 3601", SHOTS,
     _set(_snap, "captureInterval", 3601, f"{SNAP}.captureInterval", "range")),
    ("screenshot-only with empty recordingFileConfig", SHOTS,
     _screenshot_only_with_empty_file_config),
    ("snapshot in mix mode", ("mix",),
     _set(_cr, "snapshotConfig", {"fileType": ["jpg"]}, SNAP, "mode")),
    ("recordingFileConfig missing", RECORDING, _drop(_cr, "recordingFileConfig", RFC)),
    ("avFileType mp4 alone", ("mix", "web"),
     _set(lambda b: b.cr["recordingFileConfig"], "avFileType", ["mp4"], f"{RFC}.avFileType",
          "av_file_type")),
    ("avFileType mp4 in individual", ("individual", "screenshot_and_record"),
     _set(lambda b: b.cr["recordingFileConfig"], "avFileType", ["hls", "mp4"],
          f"{RFC}.avFileType", "av_file_type")),
    ("avFileType unknown", RECORDING,
     _set(lambda b: b.cr["recordingFileConfig"], "avFileType", ["hls", "flv"],
          f"{RFC}.avFileType[1]", "enum")),
    ("transcoding canvas over 1080p", ("mix",), _big_canvas),
    ("transcodingConfig in individual", INDIVIDUAL,
     _set(_rc, "transcodingConfig", {"width": 640, "height": 360}, TC, "mode")),
    ("vertical layout without maxResolutionUid", ("mix",), _layout_two_without_uid),
    ("custom layout with 18 regions", ("mix",), _too_many_regions),
    ("backgroundColor not #RRGGBB", ("mix",),
     _set(_tc, "backgroundColor", "red", f"{TC}.backgroundColor", "format")),
    ("extensionServiceConfig in mix", ("mix",),
     _set(_cr, "extensionServiceConfig", {}, f"{CR}.extensionServiceConfig", "mode")),
    ("web page over 1080p", ("web",), _big_page),
    ("maxRecordingHour 0", ("web",),
     _set(_web, "maxRecordingHour", 0, f"{WEB}.maxRecordingHour", "range")),
    ("maxRecordingHour 721", ("web",),
     _set(_web, "maxRecordingHour", 721, f"{WEB}.maxRecordingHour", "range")),
    ("maxRecordingHour missing", ("web",),
     _drop(_web, "maxRecordingHour", f"{WEB}.maxRecordingHour")),
    ("videoFps 4", ("web",), _set(_web, "videoFps", 4, f"{WEB}.videoFps", "range")),
    ("videoFps 61", ("web",), _set(_web, "videoFps", 61, f"{WEB}.videoFps", "range")),
    ("maxVideoDuration 29", ("web",),
     _set(_web, "maxVideoDuration", 29, f"{WEB}.maxVideoDuration", "range")),
    ("maxVideoDuration 241", ("web",),
     _set(_web, "maxVideoDuration", 241, f"{WEB}.maxVideoDuration", "range")),
    ("readyTimeout 61", ("web",), _set(_web, "readyTimeout", 61, f"{WEB}.readyTimeout",
                                       "range")),
    ("readyTimeout negative", ("web",),
     _set(_web, "readyTimeout", -1, f"{WEB}.readyTimeout", "range")),
    ("web url not http", ("web",), _set(_web, "url", "ftp://x", f"{WEB}.url", "format")),
    ("web audioProfile missing", ("web",), _drop(_web, "audioProfile", f"{WEB}.audioProfile")),
    ("extensionServiceConfig missing in web", ("web",),
     _drop(_cr, "extensionServiceConfig", f"{CR}.extensionServiceConfig")),
    ("recordingConfig in web", ("web",),
     _set(_cr, "recordingConfig", {"channelType": 0}, RC, "mode")),
    ("recordingConfig missing", NON_WEB, _drop(_cr, "recordingConfig", RC)),
]


def _cases() -> list[Any]:
    return [
        pytest.param(kind, mutation, id=f"{name} [{kind}]")
        for name, kinds, mutation in MUTATIONS for kind in kinds
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_valid_examples_pass(kind: str) -> None:
    body = _body(kind)
    assert body.problems() == set()
    validate_start(body.mode, body.cr, cname="class-1", uid="527841")


@pytest.mark.parametrize(("kind", "mutation"), _cases())
def test_each_constraint_is_reported_by_path_and_rule(kind: str, mutation: Mutation) -> None:
    body = _body(kind)
    expected = mutation(body)
    assert expected in body.problems()


def test_the_exception_lists_every_problem_with_its_path() -> None:
    body = _body("mix")
    body.storage["fileNamePrefix"] = ["ok", "not_ok"]
    body.rc["maxIdleTime"] = 1
    with pytest.raises(StartRequestInvalid) as caught:
        validate_start(body.mode, body.cr)
    err = caught.value
    assert err.has(f"{SC}.fileNamePrefix[1]", "charset")
    assert err.has(f"{RC}.maxIdleTime", "range")
    assert "clientRequest.storageConfig.fileNamePrefix[1]: may contain only" in str(err)
    assert "clientRequest.recordingConfig.maxIdleTime: must be in [5, 2592000]; got 1" in str(err)


def test_problems_never_repeat_credential_values() -> None:
    body = _body("individual")
    body.storage.update(vendor=5, stsToken="STS-SECRET-VALUE", accessKey=["AK-SECRET"],
                        secretKey="SK-SECRET-VALUE")
    body.cr["token"] = 12345
    with pytest.raises(StartRequestInvalid) as caught:
        validate_start(body.mode, body.cr)
    text = str(caught.value) + repr(caught.value.problems)
    assert caught.value.has(f"{SC}.stsToken", "vendor")
    assert caught.value.has(f"{SC}.accessKey", "type")
    assert caught.value.has(f"{CR}.token", "type")
    for secret in ("STS-SECRET-VALUE", "AK-SECRET", "SK-SECRET-VALUE", "12345"):
        assert secret not in text


def test_unknown_mode_and_non_object_requests() -> None:
    assert [(p.path, p.rule) for p in start_problems("composite", {})] == [("mode", "enum")]
    assert [(p.path, p.rule) for p in start_problems("mix", [])] == [(CR, "type")]


def test_prefix_length_counts_slashes() -> None:
    # 4 elements of 31 chars: 4 * 31 + 4 slashes = 128, the limit; one char more breaks it.
    body = _body("individual")
    body.storage["fileNamePrefix"] = ["a" * 31] * 4
    assert body.problems() == set()
    body.storage["fileNamePrefix"] = ["a" * 31] * 3 + ["a" * 32]
    assert (f"{SC}.fileNamePrefix", "length") in body.problems()


def test_capture_interval_bounds_follow_the_rest_reference() -> None:
    for value, ok in ((5, True), (3600, True), (1, False)):
        body = _body("screenshot_only")
        body.cr["snapshotConfig"]["captureInterval"] = value
        assert (body.problems() == set()) is ok, value


def test_allstream_is_only_for_subscribe_lists() -> None:
    body = _body("individual")
    body.rc["unsubscribeAudioUids"] = ["#allstream#"]
    assert (f"{RC}.unsubscribeAudioUids[0]", "uid") in body.problems()
    body = _body("individual")
    body.rc["subscribeAudioUids"] = ["#allstream#"]
    assert body.problems() == set()


def test_screenshot_and_record_keeps_hls() -> None:
    body = _body("screenshot_and_record")
    assert body.problems() == set()
    del body.cr["recordingFileConfig"]
    assert body.problems() == set(), "without recordingFileConfig it is screenshot-only"


def test_web_needs_one_web_recorder() -> None:
    body = _body("web")
    services = body.cr["extensionServiceConfig"]["extensionServices"]
    services[0]["serviceName"] = "rtmp_publish_service"
    services[0]["serviceParam"] = {"outputs": [{"rtmpUrl": "rtmp://cdn/live/x"}]}
    assert (f"{CR}.extensionServiceConfig.extensionServices", "required") in body.problems()


def test_rtmp_output_checks() -> None:
    body = _body("web")
    body.cr["extensionServiceConfig"]["extensionServices"].append(
        {"serviceName": "rtmp_publish_service",
         "serviceParam": {"outputs": [{"rtmpUrl": "http://x"}, {"rtmpUrl": "rtmp://y"}]}})
    base = f"{CR}.extensionServiceConfig.extensionServices[1].serviceParam.outputs"
    assert {(base, "max_entries"), (f"{base}[0].rtmpUrl", "format")} <= body.problems()


# ------------------------------------------------------------------------------ acquire


def test_acquire_accepts_the_documented_example() -> None:
    validate_acquire("httpClient463224", "527841", {"resourceExpiredHour": 24, "scene": 0})
    validate_acquire("c", "1")


@pytest.mark.parametrize(
    ("client_request", "path", "rule"),
    [
        ({"resourceExpiredHour": 0}, f"{CR}.resourceExpiredHour", "range"),
        ({"resourceExpiredHour": 721}, f"{CR}.resourceExpiredHour", "range"),
        ({"scene": 3}, f"{CR}.scene", "enum"),
        ({"region": "US"}, f"{CR}.region", "enum"),
        ({"excludeResourceIds": "rid"}, f"{CR}.excludeResourceIds", "type"),
        ({"startParameter": []}, f"{CR}.startParameter", "type"),
        ({"ResourceExpiredHour": 2}, f"{CR}.ResourceExpiredHour", "case"),
    ],
)
def test_acquire_constraints(client_request: dict[str, Any], path: str, rule: str) -> None:
    with pytest.raises(AcquireRequestInvalid) as caught:
        validate_acquire("c", "1", client_request)
    assert caught.value.has(path, rule)


def test_acquire_checks_uid_and_cname() -> None:
    found = {(p.path, p.rule) for p in acquire_problems("bad/name", "0")}
    assert found == {("cname", "cname"), ("uid", "uid")}


def test_acquire_scene_must_match_the_mode() -> None:
    assert (f"{CR}.scene", "scene") in {
        (p.path, p.rule) for p in acquire_problems("c", "1", {"scene": 0}, mode="web")}
    assert (f"{CR}.scene", "scene") in {
        (p.path, p.rule) for p in acquire_problems("c", "1", {}, mode="web")}
    assert (f"{CR}.scene", "scene") in {
        (p.path, p.rule) for p in acquire_problems("c", "1", {"scene": 1}, mode="mix")}
    assert acquire_problems("w" * 500, "1", {"scene": 1}) == [], "web labels may be long"


def test_acquire_checks_start_parameter_as_a_start_request() -> None:
    mode, start = valid_request("mix")
    assert acquire_problems("c", "1", {"startParameter": start}, mode=mode) == []
    start["recordingConfig"]["maxIdleTime"] = 1
    found = {(p.path, p.rule) for p in acquire_problems("c", "1", {"startParameter": start},
                                                         mode=mode)}
    assert found == {(f"{CR}.startParameter.recordingConfig.maxIdleTime", "range")}


# ------------------------------------------------------------------------------- update


def test_update_subscription_lists() -> None:
    validate_update("individual", {"streamSubscribe": {
        "audioUidList": {"subscribeAudioUids": ["#allstream#"]},
        "videoUidList": {"unsubscribeVideoUids": ["1001"]}}})
    with pytest.raises(UpdateRequestInvalid) as caught:
        validate_update("mix", {"streamSubscribe": {"audioUidList": {
            "subscribeAudioUids": ["1"], "unsubscribeAudioUids": ["2"]},
            "videoUidList": {"subscribeVideoUids": [str(i + 1) for i in range(33)]}}})
    base = f"{CR}.streamSubscribe"
    assert caught.value.has(f"{base}.audioUidList.unsubscribeAudioUids", "exclusive")
    assert caught.value.has(f"{base}.videoUidList.subscribeVideoUids", "max_entries")


def test_update_web_only_fields() -> None:
    validate_update("web", {"webRecordingConfig": {"onhold": True},
                            "rtmpPublishConfig": {"outputs": [{"rtmpUrl": "rtmps://a/b"}]}})
    found = {(p.path, p.rule) for p in update_problems("mix", {"webRecordingConfig": {
        "onhold": "yes"}})}
    assert found == {(f"{CR}.webRecordingConfig", "mode"),
                     (f"{CR}.webRecordingConfig.onhold", "type")}


def test_update_storage_refresh_may_be_partial() -> None:
    validate_update("mix", {"storageConfig": {"stsToken": "t", "stsExpiration": 1700000000,
                                              "vendor": 1}})


def test_update_layout_is_mix_only_and_checks_the_layout() -> None:
    validate_update("mix", {"mixedVideoLayout": 3, "layoutConfig": [
        {"uid": "1", "x_axis": 0.1, "y_axis": 0.2, "width": 0.5, "height": 0.5}]}, layout=True)
    found = {(p.path, p.rule) for p in update_problems(
        "individual", {"mixedVideoLayout": 3, "layoutConfig": [{"x_axis": 1.5}]}, layout=True)}
    assert found == {("mode", "mode"), (f"{CR}.layoutConfig[0].x_axis", "range"),
                     (f"{CR}.layoutConfig[0].y_axis", "required")}


# ---------------------------------------------------------------------- property tests

_ALNUM = string.ascii_letters + string.digits
_CNAME_CHARS = _ALNUM + " !#$%&()+-:;<=.>?@[]^_{}|~,"
_uids = st.integers(1, 2**32 - 1).map(str)
_uid_lists = st.one_of(st.just(["#allstream#"]), st.lists(_uids, min_size=1, max_size=32))


@st.composite
def _storage_configs(draw: st.DrawFn) -> dict[str, Any]:
    vendor = draw(st.sampled_from([1, 2, 3, 5, 6, 7, 8, 11]))
    storage: dict[str, Any] = {
        "vendor": vendor, "region": draw(st.integers(0, 30)),
        "bucket": draw(st.text(min_size=1, max_size=20)),
        "accessKey": draw(st.text(min_size=1, max_size=20)),
        "secretKey": draw(st.text(min_size=1, max_size=20)),
    }
    if draw(st.booleans()):
        storage["fileNamePrefix"] = draw(st.lists(
            st.text(alphabet=_ALNUM, min_size=1, max_size=20), max_size=4))
    if vendor == 11:
        storage["extensionParams"] = {"endpoint": "https://s3.example.com"}
    elif vendor in (1, 2, 3) and draw(st.booleans()):
        storage["stsToken"] = "token"
        storage["stsExpiration"] = draw(st.integers(1, 2**32))
    return storage


@st.composite
def _recording_config(draw: st.DrawFn, mode: str, snapshot: bool) -> dict[str, Any]:
    rc: dict[str, Any] = {"channelType": draw(st.sampled_from([0, 1]))}
    stream_types = draw(st.sampled_from([1, 2] if snapshot else [0, 1, 2]))
    if stream_types != 2 or draw(st.booleans()):
        rc["streamTypes"] = stream_types
    if draw(st.booleans()):
        rc["maxIdleTime"] = draw(st.integers(5, 2_592_000))
    if mode == "individual" or draw(st.booleans()):
        rc["subscribeUidGroup"] = draw(st.integers(0, 5))
    for media, applies in (("Audio", stream_types in (0, 2)), ("Video", stream_types in (1, 2))):
        choice = draw(st.sampled_from(["none", "sub", "unsub"] if applies else ["none", "unsub"]))
        if choice == "sub":
            rc[f"subscribe{media}Uids"] = draw(_uid_lists)
        elif choice == "unsub":
            rc[f"unsubscribe{media}Uids"] = draw(st.lists(_uids, min_size=1, max_size=32))
    if snapshot and "subscribeAudioUids" in rc and "subscribeVideoUids" not in rc:
        rc.pop("unsubscribeVideoUids", None)
        rc["subscribeVideoUids"] = ["#allstream#"]
    if mode == "individual" and draw(st.booleans()):
        rc["streamMode"] = "original" if stream_types == 0 else draw(
            st.sampled_from(["default", "standard"]))
    if mode == "mix":
        rc["audioProfile"] = draw(st.integers(0, 2))
        width = draw(st.integers(1, 1920))
        height = draw(st.integers(1, 1080))
        layout = draw(st.integers(0, 3))
        tc: dict[str, Any] = {"width": width, "height": height, "mixedVideoLayout": layout,
                              "fps": draw(st.integers(1, 30)),
                              "bitrate": draw(st.integers(1, 10_000))}
        if layout == 2:
            tc["maxResolutionUid"] = draw(_uids)
        if layout == 3:
            unit = st.floats(0.0, 1.0)
            tc["layoutConfig"] = draw(st.lists(st.fixed_dictionaries(
                {"x_axis": unit, "y_axis": unit, "width": unit, "height": unit}),
                min_size=1, max_size=17))
        if draw(st.booleans()):
            tc["backgroundColor"] = "#" + draw(st.text("0123456789abcdefABCDEF", min_size=6,
                                                       max_size=6))
        rc["transcodingConfig"] = tc
    return rc


@st.composite
def _request(draw: st.DrawFn, kind: str) -> Body:
    mode, _ = valid_request(kind)
    snapshot = kind in SHOTS
    cr: dict[str, Any] = {"storageConfig": draw(_storage_configs())}
    if mode == "web":
        width = draw(st.integers(1, 1920))
        params: dict[str, Any] = {
            "url": "https://example.com/" + draw(st.text(alphabet=_ALNUM, max_size=10)),
            "audioProfile": draw(st.integers(0, 2)), "videoWidth": width,
            "videoHeight": draw(st.integers(1, 1080)),
            "maxRecordingHour": draw(st.integers(1, 720)),
            "videoFps": draw(st.integers(5, 60)),
            "maxVideoDuration": draw(st.integers(30, 240)),
            "readyTimeout": draw(st.integers(0, 60)),
            "mobile": draw(st.booleans()), "onhold": draw(st.booleans()),
        }
        cr["extensionServiceConfig"] = {"extensionServices": [
            {"serviceName": "web_recorder_service", "serviceParam": params}]}
    else:
        cr["recordingConfig"] = draw(_recording_config(mode, snapshot))
    if snapshot:
        snap: dict[str, Any] = {"fileType": ["jpg"]}
        if draw(st.booleans()):
            snap["captureInterval"] = draw(st.integers(5, 3600))
        cr["snapshotConfig"] = snap
    if kind == "screenshot_and_record" or (mode == "individual" and not snapshot):
        cr["recordingFileConfig"] = {"avFileType": ["hls"]}
    elif mode in ("mix", "web"):
        cr["recordingFileConfig"] = {"avFileType": draw(st.sampled_from(
            [["hls"], ["hls", "mp4"], ["mp4", "hls"]]))}
    cname = draw(st.text(alphabet=_CNAME_CHARS, min_size=1, max_size=63))
    return Body(mode, {"cname": cname, "uid": draw(_uids)}, cr)


_APPLICABLE = {kind: [m for _, kinds, m in MUTATIONS if kind in kinds] for kind in KINDS}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_valid_requests_pass(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    body = data.draw(_request(kind))
    assert body.problems() == set()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_mutation_is_reported_by_its_rule(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    body = data.draw(_request(kind))
    mutation = data.draw(st.sampled_from(_APPLICABLE[kind]))
    expected = mutation(body)
    assert expected in body.problems()


def test_storage_fixture_is_what_profiles_look_like() -> None:
    assert set(STORAGE) >= {"vendor", "region", "bucket", "accessKey", "secretKey"}
