"""The wire format between the bot and the workers: every request field crosses, bytes too."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from generation.errors import GenerationError, OutOfMemoryError, PoisonJobError
from generation.fake_engine import tiny_png
from generation.streams import (
    Reachability,
    decode_error,
    decode_request,
    decode_result,
    encode_error,
    encode_request,
    encode_result,
    redact_url,
    url_secrets,
)
from generation.types import UPSCALE, GeneratedImage, GenerationRequest, GenerationResult


def as_read(written: dict[str, str | bytes]) -> dict[bytes, bytes]:
    """Stream fields as XREADGROUP returns them: bytes names and values."""
    return {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in written.items()}


def test_every_request_field_crosses_including_an_image() -> None:
    request = GenerationRequest(
        prompt="ピカチュウ",
        negative_prompt="blurry",
        seed=42,
        steps=30,
        guidance=6.5,
        height=448,
        width=640,
        scheduler="lms",
        translate=True,
        init_image=tiny_png(7),
        strength=0.6,
    )
    assert decode_request(encode_request(request)) == request
    defaults = GenerationRequest(prompt="x")
    assert decode_request(encode_request(defaults)) == defaults
    # Every field is in the payload, so a field added later travels without changes here;
    # but a drawing's kind, so that a worker older than request kinds reads every drawing.
    assert set(json.loads(encode_request(request))) == {
        f.name for f in dataclasses.fields(GenerationRequest)
    } - {"kind"}
    upscale = GenerationRequest(prompt="", kind=UPSCALE, init_image=tiny_png(3))
    assert json.loads(encode_request(upscale))["kind"] == UPSCALE
    assert decode_request(encode_request(upscale)) == upscale


def test_a_request_field_this_worker_does_not_know_is_a_clear_error() -> None:
    payload = json.loads(encode_request(GenerationRequest(prompt="x")))
    payload["sparkles"] = 3
    with pytest.raises(GenerationError, match=r"does not know the request fields \['sparkles'\]"):
        decode_request(json.dumps(payload))


def test_a_result_crosses_with_its_pngs_and_the_model_that_drew_it() -> None:
    images = tuple(
        GeneratedImage(tiny_png(seed), seed, 25, 512, 768, 9, False, {"denoise": 1.0}, "p", "n")
        for seed in (1, 2, 3)
    )
    result = GenerationResult(
        5, images, queued_seconds=0.5, run_seconds=1.5, batch_size=4, model="someone/other-model"
    )
    fields = as_read(encode_result(result))
    assert decode_result(fields) == result
    assert decode_result(fields).model == "someone/other-model"
    assert fields[b"png2"] == tiny_png(3)  # raw bytes, one field per picture


def test_a_result_from_an_older_or_newer_worker_is_still_read() -> None:
    image = GeneratedImage(tiny_png(1), 1, 25, 64, 64, 3, False)
    fields = as_read(encode_result(GenerationResult(5, (image,), 0.5, 1.5, model="m")))
    meta = json.loads(fields[b"meta"])
    del meta["model"]  # a worker from before results named their model
    meta["sparkles"] = 3  # one from after, with a field this bot does not know
    meta["images"][0]["glitter"] = True
    fields[b"meta"] = json.dumps(meta).encode()
    back = decode_result(fields)
    assert back.model == ""
    assert back.first == image


@pytest.mark.parametrize(
    "error", [OutOfMemoryError("oom"), PoisonJobError("set aside"), GenerationError("x")]
)
def test_an_error_crosses_as_the_same_class(error: GenerationError) -> None:
    fields = as_read(encode_error(error))
    back = decode_error(fields)
    assert type(back) is type(error)
    assert (back.code, str(back)) == (error.code, str(error))


def test_urls_lose_their_password_in_logs() -> None:
    assert redact_url("redis://:secret@host") == "redis://host"
    assert redact_url("redis://:hunter2@host:6379/0") == "redis://host:6379/0"
    assert redact_url("rediss://user:pw@host/0") == "rediss://user@host/0"
    assert redact_url("unix://default:pw@/tmp/r.sock") == "unix://default@/tmp/r.sock"
    assert redact_url("redis://host/0?password=pw&db=1") == "redis://host/0?db=1"
    assert redact_url("unix:///tmp/r.sock") == "unix:///tmp/r.sock"
    assert redact_url("redis://host:6379") == "redis://host:6379"


def test_a_urls_secrets_are_its_password_as_written_and_decoded() -> None:
    assert url_secrets("redis://:p%40ss@host") == ["p%40ss", "p@ss"]
    assert url_secrets("unix://default:pw@/tmp/r.sock?password=other") == ["other", "pw"]
    assert url_secrets("redis://host:6379/0") == []
    assert url_secrets("") == []


def test_an_outage_is_said_once_then_once_an_interval_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    redis = Reachability(
        "redis://:hunter2@cache:6379/0", impact="jobs wait", repeat=60.0, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO, logger="generation.streams")
    for at in (0.0, 1.0, 30.0, 59.0, 60.0, 61.0, 119.0, 120.5):  # a retry every so often
        now[0] = at
        redis.failed(ConnectionRefusedError(111, "Connection refused"))
    now[0] = 130.0
    redis.reached()
    redis.reached()  # up and staying up: nothing more to say
    assert [r.getMessage() for r in caplog.records] == [
        "cannot reach Redis at redis://cache:6379/0: [Errno 111] Connection refused; jobs wait",
        "Redis at redis://cache:6379/0 still cannot be reached after 60 s: "
        "[Errno 111] Connection refused; jobs wait",
        "Redis at redis://cache:6379/0 still cannot be reached after 120 s: "
        "[Errno 111] Connection refused; jobs wait",
        "Redis at redis://cache:6379/0 can be reached again (after 130 s)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert not redis.down
    now[0] = 200.0
    redis.failed(TimeoutError("timed out"))  # a new outage is said at once
    assert caplog.records[-1].getMessage().startswith("cannot reach Redis at redis://cache")
    assert "hunter2" not in caplog.text
