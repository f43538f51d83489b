"""Runtime changes (``update`` / ``updateLayout``) folded into the start request, so a
restart starts with the latest state.

Agora's ``start`` accepts everything ``update`` and ``updateLayout`` change (facts 2.5,
2.7): subscription lists in ``recordingConfig``, the layout in
``recordingConfig.transcodingConfig``, ``onhold`` and the RTMP outputs in the web page
extension services. So the registry keeps the start request *as it now is*, and a
restart sends one ``start`` that records the right streams and layout from its first
second. Re-applying the changes after the start would record the original state for a
while, spend more calls of the App ID's QPS, and fail while the new task is still
starting (Agora answers 404 to ``update`` until the task runs).

``storageConfig`` in an ``update`` refreshes STS credentials: the registry holds those as
``${NAME}`` references resolved at send time, so nothing is folded for them.

Pure: :func:`fold_update` and :func:`fold_layout` return a new request.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_SUBSCRIBE_KEYS = {
    "audioUidList": ("subscribeAudioUids", "unsubscribeAudioUids"),
    "videoUidList": ("subscribeVideoUids", "unsubscribeVideoUids"),
}
LAYOUT_KEYS = ("mixedVideoLayout", "maxResolutionUid", "backgroundColor", "backgroundImage",
               "defaultUserBackgroundImage", "layoutConfig", "backgroundConfig")


def fold_update(client_request: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The start request with an ``update`` clientRequest applied: each media's
    subscribe/unsubscribe list replaces the one in ``recordingConfig`` (the two are
    exclusive, so setting one drops the other); ``webRecordingConfig.onhold`` and
    ``rtmpPublishConfig.outputs`` go to their extension service's ``serviceParam``."""
    request = copy.deepcopy(dict(client_request))
    subscribe = update.get("streamSubscribe")
    if isinstance(subscribe, Mapping):
        config = request.setdefault("recordingConfig", {})
        for media, (sub, unsub) in _SUBSCRIBE_KEYS.items():
            lists = subscribe.get(media)
            if not isinstance(lists, Mapping):
                continue
            for key in (sub, unsub):
                if key in lists:
                    config[key] = list(lists[key])
                    config.pop(unsub if key == sub else sub, None)
    web = update.get("webRecordingConfig")
    if isinstance(web, Mapping) and "onhold" in web:
        _service_param(request, "web_recorder_service")["onhold"] = web["onhold"]
    rtmp = update.get("rtmpPublishConfig")
    if isinstance(rtmp, Mapping) and "outputs" in rtmp:
        _service_param(request, "rtmp_publish_service")["outputs"] = copy.deepcopy(
            rtmp["outputs"])
    return request


def fold_layout(client_request: Mapping[str, Any], layout: Mapping[str, Any]) -> dict[str, Any]:
    """The start request with an ``updateLayout`` clientRequest applied. Agora replaces
    the whole layout (unset fields revert to their defaults), so every layout field of
    ``transcodingConfig`` is replaced, not merged."""
    request = copy.deepcopy(dict(client_request))
    transcoding = request.setdefault("recordingConfig", {}).setdefault("transcodingConfig", {})
    for key in LAYOUT_KEYS:
        transcoding.pop(key, None)
    for key in LAYOUT_KEYS:
        if key in layout:
            transcoding[key] = copy.deepcopy(layout[key])
    return request


def _service_param(request: dict[str, Any], service: str) -> dict[str, Any]:
    services = request.setdefault("extensionServiceConfig", {}).setdefault(
        "extensionServices", [])
    entry = next((s for s in services if isinstance(s, dict)
                  and s.get("serviceName") == service), None)
    if entry is None:
        entry = {"serviceName": service, "serviceParam": {}}
        services.append(entry)
    param: dict[str, Any] = entry.setdefault("serviceParam", {})
    return param
