"""Valid Cloud Recording start requests, one per kind of task, for tests to start from.

Each call returns a fresh deep copy, so a test may mutate it freely.
"""

from __future__ import annotations

import copy
from typing import Any

from handlers.recording.api_requests import Mode

STORAGE: dict[str, Any] = {
    "vendor": 1, "region": 0, "bucket": "recordings", "accessKey": "AKIAEXAMPLEKEY",
    "secretKey": "storage-secret-value", "fileNamePrefix": ["rec", "class1"],
}

_KINDS: dict[str, tuple[Mode, dict[str, Any]]] = {
    "individual": ("individual", {
        "recordingConfig": {"channelType": 0, "subscribeUidGroup": 0, "maxIdleTime": 300,
                            "streamTypes": 2},
        "recordingFileConfig": {"avFileType": ["hls"]},
        "storageConfig": STORAGE,
    }),
    # Agora's screenshot guide examples, with subscribeUidGroup (required in individual).
    "screenshot_only": ("individual", {
        "recordingConfig": {"channelType": 1, "subscribeUidGroup": 0},
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "storageConfig": STORAGE,
    }),
    "screenshot_and_record": ("individual", {
        "recordingConfig": {"maxIdleTime": 30, "streamTypes": 1, "channelType": 0,
                            "subscribeUidGroup": 0},
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "recordingFileConfig": {"avFileType": ["hls"]},
        "storageConfig": STORAGE,
    }),
    "mix": ("mix", {
        "recordingConfig": {"channelType": 0, "audioProfile": 1, "transcodingConfig": {
            "width": 1280, "height": 720, "fps": 15, "bitrate": 1500, "mixedVideoLayout": 1}},
        "recordingFileConfig": {"avFileType": ["hls", "mp4"]},
        "storageConfig": STORAGE,
    }),
    "web": ("web", {
        "extensionServiceConfig": {"errorHandlePolicy": "error_abort", "extensionServices": [
            {"serviceName": "web_recorder_service", "errorHandlePolicy": "error_abort",
             "serviceParam": {"url": "https://example.com/class/1", "audioProfile": 0,
                              "videoWidth": 1280, "videoHeight": 720, "maxRecordingHour": 2,
                              "videoFps": 15, "maxVideoDuration": 120, "readyTimeout": 30}},
        ]},
        "recordingFileConfig": {"avFileType": ["hls", "mp4"]},
        "storageConfig": STORAGE,
    }),
}

KINDS = tuple(_KINDS)


def valid_request(kind: str) -> tuple[Mode, dict[str, Any]]:
    """``(mode, clientRequest)`` of a valid start request of this kind."""
    mode, request = _KINDS[kind]
    return mode, copy.deepcopy(request)
