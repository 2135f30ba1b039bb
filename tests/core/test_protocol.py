import json
import re
from pathlib import Path

import pytest

from core.protocol import (
    AckFrame,
    ChatFrame,
    CloseCode,
    FrameError,
    ResumeFrame,
    parse_client_frame,
)


def parse(frame: object, max_text_chars: int = 100):
    raw = frame if isinstance(frame, str) else json.dumps(frame)
    return parse_client_frame(raw, max_text_chars=max_text_chars)


def error_of(frame: object, max_text_chars: int = 100) -> FrameError:
    with pytest.raises(FrameError) as caught:
        parse(frame, max_text_chars)
    return caught.value


def test_a_chat_frame_parses_with_a_null_thread():
    frame = parse({"type": "chat", "id": "m1", "thread_id": None, "text": "hi"})
    assert frame == ChatFrame(type="chat", id="m1", thread_id=None, text="hi")


def test_ack_and_resume_frames_parse():
    assert parse({"type": "ack", "thread_id": "t", "seq": 3}) == AckFrame(
        type="ack", thread_id="t", seq=3
    )
    resume = parse({"type": "resume", "thread_id": "t", "epoch": "e", "last_seq": 0})
    assert isinstance(resume, ResumeFrame)


@pytest.mark.parametrize("raw", ["{", "nan", "\x00", "[1, 2]", "42", '"chat"'])
def test_text_that_is_not_a_json_object_is_invalid_json(raw):
    assert error_of(raw).code == "invalid_json"


def test_an_unknown_type_is_named_in_the_error():
    error = error_of({"type": "subscribe", "id": "x"})
    assert (error.code, error.ref) == ("unknown_type", "x")
    assert "subscribe" in error.message


@pytest.mark.parametrize(
    "frame",
    [
        {"id": "x"},
        {"type": 7},
        {"type": "chat", "id": "x", "thread_id": None},
        {"type": "chat", "id": "", "thread_id": None, "text": "hi"},
        {"type": "chat", "id": "x", "thread_id": 5, "text": "hi"},
        {"type": "ack", "thread_id": "t", "seq": "3"},
        {"type": "ack", "thread_id": "t", "seq": -1},
        {"type": "ack", "thread_id": "t", "seq": True},
        {"type": "resume", "thread_id": "t", "epoch": "e"},
        {"type": "cancel"},
    ],
)
def test_missing_or_mistyped_fields_are_invalid_field(frame):
    assert error_of(frame).code == "invalid_field"


def test_the_error_names_the_field_and_keeps_the_chat_id_as_ref():
    error = error_of({"type": "chat", "id": "m9", "thread_id": None})
    assert error.ref == "m9"
    assert "'text'" in error.message


def test_chat_text_with_a_nul_character_is_refused():
    error = error_of({"type": "chat", "id": "m", "thread_id": None, "text": "a\x00b"})
    assert (error.code, error.ref) == ("invalid_field", "m")


def test_oversized_chat_text_is_too_large():
    error = error_of({"type": "chat", "id": "m", "thread_id": None, "text": "x" * 101})
    assert (error.code, error.ref) == ("too_large", "m")


def test_deeply_nested_json_is_refused_not_crashed():
    assert error_of("[" * 100_000 + "]" * 100_000).code == "invalid_json"


def test_the_close_codes_are_the_documented_table():
    text = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    table = text.split("## Close codes", 1)[1] if "## Close codes" in text else text
    documented = {int(code) for code in re.findall(r"^\| (\d{4}) \|", table, re.MULTILINE)}
    sent = {code for code in CloseCode if code != CloseCode.NO_CLOSE_FRAME}
    assert documented == sent
