"""Record parsing: every released format, placeholder placement, path resolution, and errors naming file + id."""

from __future__ import annotations

import pytest

from unifiedreward.data import DataError, MediaPart, Record, TextPart, parse_record

pytestmark = pytest.mark.unit

SOURCE = "dataset/HPD/train_data.json"


def _parse(data: dict, **kwargs) -> Record:
    kwargs.setdefault("media_folder", "/media")
    return parse_record(data, source=SOURCE, index=7, **kwargs)


def _conv(human: str, answer: str = "Image 1 is better.") -> list[dict]:
    return [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]


def _user(record: Record) -> list:
    return next(turn for turn in record.turns if turn.role == "user").content


IMG = MediaPart("image", "/media/a.jpg")


# ---------------------------------------------------------------------------------------------------------------- #
# LLaVA: images


def test_single_image_placeholder_at_start():
    record = _parse({"id": "hpd_1", "image": "a.jpg", "conversations": _conv("<image>\nIs it good?")})
    assert record.id == "hpd_1" and record.source == SOURCE and record.index == 7
    assert record.media_kind == "image" and record.meta["format"] == "llava"
    assert _user(record) == [IMG, TextPart("Is it good?")]  # the "\n" after the placeholder is dropped
    assert record.to_messages() == [
        {
            "role": "user",
            "content": [{"type": "image", "path": "/media/a.jpg"}, {"type": "text", "text": "Is it good?"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Image 1 is better."}]},
    ]


def test_single_image_placeholder_in_the_middle():
    record = _parse({"image": "a.jpg", "conversations": _conv("Look at this:\n<image>\nIs it good?")})
    assert _user(record) == [TextPart("Look at this:\n"), IMG, TextPart("Is it good?")]


def test_single_image_without_placeholder_goes_first():
    record = _parse({"image": "a.jpg", "conversations": _conv("Is it good?")})
    assert _user(record) == [IMG, TextPart("Is it good?")]
    assert record.num_images == 1 and record.num_videos == 0


def test_placeholder_without_newline_and_only_one_newline_stripped():
    record = _parse({"image": "a.jpg", "conversations": _conv("<image>\n\nText")})
    assert _user(record) == [IMG, TextPart("\nText")]
    record = _parse({"image": "a.jpg", "conversations": _conv("Text <image>")})
    assert _user(record) == [TextPart("Text "), IMG]


def test_several_images_with_placeholders_keep_order():
    record = _parse(
        {"images": ["one.png", "two.png"], "conversations": _conv("Caption: cat.\n<image>\nversus\n<image>\nWhich?")}
    )
    assert _user(record) == [
        TextPart("Caption: cat.\n"),
        MediaPart("image", "/media/one.png"),
        TextPart("versus\n"),
        MediaPart("image", "/media/two.png"),
        TextPart("Which?"),
    ]
    assert record.media_kind == "image"
    assert record.media_paths() == ["/media/one.png", "/media/two.png"]


def test_two_images_without_placeholders_go_first():
    record = _parse({"images": ["one.png", "two.png"], "conversations": _conv("Which?")})
    assert _user(record) == [
        MediaPart("image", "/media/one.png"),
        MediaPart("image", "/media/two.png"),
        TextPart("Which?"),
    ]


def test_list_valued_image():
    # upstream crashes on this in a YAML mixture (os.path.join(folder, list)); we support it
    record = _parse({"image": ["a.jpg", "/abs/b.jpg"], "conversations": _conv("<image>\n<image>\nCompare.")})
    assert _user(record) == [IMG, MediaPart("image", "/abs/b.jpg"), TextPart("Compare.")]
    # more than two paths under "image" stay images (the video rule is for "images")
    record = _parse({"image": ["a", "b", "c"], "conversations": _conv("<image><image><image>x")})
    assert record.num_images == 3 and record.media_kind == "image"


def test_images_over_threshold_are_one_frame_video():
    frames = [f"f{i}.jpg" for i in range(4)]
    record = _parse({"images": frames, "conversations": _conv("<image>\nDescribe the video.")})
    video = MediaPart("video", tuple(f"/media/f{i}.jpg" for i in range(4)))
    assert _user(record) == [video, TextPart("Describe the video.")]
    assert record.media_kind == "video" and record.num_videos == 1 and record.num_images == 0
    assert record.media_paths() == [f"/media/f{i}.jpg" for i in range(4)]
    assert record.to_messages()[0]["content"][0] == {"type": "video", "path": [f"/media/f{i}.jpg" for i in range(4)]}
    # one placeholder per frame (upstream strips them all): one video at the first one
    record = _parse({"images": frames, "conversations": _conv("Clip: <image>\n<image>\n<image>\n<image>\nok?")})
    assert _user(record) == [TextPart("Clip: "), video, TextPart("ok?")]
    # no placeholder: prepended
    assert _user(_parse({"images": frames, "conversations": _conv("ok?")})) == [video, TextPart("ok?")]
    # the threshold is an option; None disables the rule
    record = _parse({"images": frames, "conversations": _conv("ok?")}, images_as_video_threshold=4)
    assert record.num_images == 4 and record.media_kind == "image"
    record = _parse({"images": frames, "conversations": _conv("ok?")}, images_as_video_threshold=None)
    assert record.num_images == 4


def test_video_file_replaces_placeholder():
    record = _parse({"video": "clips/v.mp4", "conversations": _conv("<video>\nRate this video.")})
    assert _user(record) == [MediaPart("video", "/media/clips/v.mp4"), TextPart("Rate this video.")]
    record = _parse({"video": "clips/v.mp4", "conversations": _conv("Rate <image>\nthis video.")})
    assert _user(record) == [TextPart("Rate "), MediaPart("video", "/media/clips/v.mp4"), TextPart("this video.")]
    record = _parse({"video": "clips/v.mp4", "conversations": _conv("Rate this video.")})
    assert _user(record) == [MediaPart("video", "/media/clips/v.mp4"), TextPart("Rate this video.")]
    assert record.media_kind == "video"


def test_video_frame_folder():
    record = _parse({"video": "shareVideoGPTV/frames/abc", "conversations": _conv("<video>\nWhat happens?")})
    assert _user(record) == [MediaPart("video", "/media/shareVideoGPTV/frames/abc"), TextPart("What happens?")]
    assert record.media_paths() == ["/media/shareVideoGPTV/frames/abc"]
    # a list of frame files under "video" is one video too
    record = _parse({"video": ["x/0.jpg", "x/1.jpg"], "conversations": _conv("<video>\nok")})
    assert _user(record)[0] == MediaPart("video", ("/media/x/0.jpg", "/media/x/1.jpg"))


def test_path_resolution():
    record = _parse({"image": "/abs/a.jpg", "conversations": _conv("x")})
    assert record.media_paths() == ["/abs/a.jpg"]
    record = parse_record({"image": "rel/a.jpg", "conversations": _conv("x")}, source=SOURCE, index=0)
    assert record.media_paths() == ["rel/a.jpg"]  # no folder: kept as is


# ---------------------------------------------------------------------------------------------------------------- #
# other formats and turn handling


def test_messages_format():
    data = {
        "messages": [
            {"role": "system", "content": "You are a judge."},
            {"role": "user", "content": "<image>Is this aligned with 'a red bus'?"},
            {"role": "assistant", "content": "Yes."},
        ],
        "images": ["bus.jpg"],
    }
    record = _parse(data)
    assert record.meta["format"] == "messages" and record.media_kind == "image"
    assert [t.role for t in record.turns] == ["system", "user", "assistant"]
    assert _user(record) == [MediaPart("image", "/media/bus.jpg"), TextPart("Is this aligned with 'a red bus'?")]
    assert record.id == f"{SOURCE}:7"


def test_messages_format_videos_and_mixed():
    data = {
        "messages": [
            {"role": "user", "content": "<video>then<image>"},
            {"role": "assistant", "content": "ok"},
        ],
        "images": ["i.png"],
        "videos": [["f0.jpg", "f1.jpg"]],
    }
    record = _parse(data)
    assert _user(record) == [
        MediaPart("video", ("/media/f0.jpg", "/media/f1.jpg")),
        TextPart("then"),
        MediaPart("image", "/media/i.png"),
    ]
    assert record.media_kind == "mixed"
    text_only = _parse(
        {
            "messages": data["messages"][:0]
            + [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "images": [],
        }
    )
    assert text_only.media_kind == "text"


def test_text_only():
    record = _parse({"id": 5, "conversations": _conv("Which answer is better?", "Answer 1 is better.")})
    assert record.id == "5" and record.media_kind == "text" and record.media_paths() == []
    assert record.to_messages() == [
        {"role": "user", "content": [{"type": "text", "text": "Which answer is better?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Answer 1 is better."}]},
    ]


def test_multi_turn():
    conv = [
        {"from": "human", "value": "<image>\nFirst question"},
        {"from": "gpt", "value": "First answer"},
        {"from": "human", "value": "Second question"},
        {"from": "gpt", "value": "Second answer"},
    ]
    record = _parse({"image": "a.jpg", "conversations": conv})
    assert [t.role for t in record.turns] == ["user", "assistant", "user", "assistant"]
    assert [t.text() for t in record.turns] == ["First question", "First answer", "Second question", "Second answer"]
    assert record.turns[0].media() == [IMG] and record.turns[2].media() == []


def test_role_content_variant_and_system_kept():
    conv = [
        {"role": "system", "content": "Be strict."},
        {"role": "user", "content": "<image>\nScore it."},
        {"role": "assistant", "content": "Final Score: 4"},
    ]
    record = _parse({"image": "a.jpg", "conversations": conv})
    assert [t.role for t in record.turns] == ["system", "user", "assistant"]
    assert record.to_messages()[0] == {"role": "system", "content": [{"type": "text", "text": "Be strict."}]}


def test_leading_assistant_turn_dropped():
    conv = [{"from": "gpt", "value": "Hello!"}, *_conv("<image>\nScore it.", "3")]
    record = _parse({"image": "a.jpg", "conversations": conv})
    assert [t.role for t in record.turns] == ["user", "assistant"]
    assert record.meta["dropped_turns"] == 1


def test_grpo_prompt_record():
    data = {"problem": "Which image is better?", "solution": "Image 1 is better", "images": ["a.jpg", "b.jpg"]}
    record = _parse(data)
    assert [t.role for t in record.turns] == ["user"]
    assert _user(record) == [IMG, MediaPart("image", "/media/b.jpg"), TextPart("Which image is better?")]
    assert record.meta == {"format": "grpo", "solution": "Image 1 is better"}
    single = _parse({"problem": "<image>\nok?", "solution": "x", "image": "a.jpg"})
    assert _user(single) == [IMG, TextPart("ok?")]


# ---------------------------------------------------------------------------------------------------------------- #
# malformed records: DataError naming the file and the record id


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"id": "bad"}, "no 'conversations' or 'messages'"),
        ({"id": "bad", "conversations": []}, "is empty"),
        ({"id": "bad", "conversations": "hi"}, "must be a list"),
        (
            {"id": "bad", "conversations": [{"from": "human", "value": ["x"]}, {"from": "gpt", "value": "y"}]},
            "list content",
        ),
        (
            {"id": "bad", "conversations": [{"from": "human", "value": None}, {"from": "gpt", "value": "y"}]},
            "NoneType content",
        ),
        ({"id": "bad", "conversations": [{"from": "human", "value": "only a question"}]}, "no assistant turn"),
        (
            {"id": "bad", "conversations": [{"from": "robot", "value": "x"}, {"from": "gpt", "value": "y"}]},
            "unknown role 'robot'",
        ),
        ({"id": "bad", "conversations": [{"value": "x"}, {"from": "gpt", "value": "y"}]}, "no 'from'/'role'"),
        ({"id": "bad", "conversations": ["x", "y"]}, "expected an object"),
        (
            {"id": "bad", "conversations": [{"from": "gpt", "value": "a"}, {"from": "gpt", "value": "b"}]},
            "no user turn",
        ),
        ({"id": "bad", "conversations": _conv("x", "  ")}, "assistant turn 1 is empty"),
        ({"id": "bad", "conversations": [*_conv("x"), {"from": "system", "value": "late"}]}, "system turn after"),
        ({"id": "bad", "image": 3, "conversations": _conv("x")}, "'image' must be a list"),
        ({"id": "bad", "image": ["a.jpg", 4], "conversations": _conv("<image><image>x")}, "holds 4"),
        ({"id": "bad", "images": "a.jpg", "conversations": _conv("x")}, "'images' must be a list"),
        ({"id": "bad", "video": {"path": "v.mp4"}, "conversations": _conv("x")}, "'video' must be a list"),
        ({"id": "bad", "image": "", "conversations": _conv("x")}, "non-empty path"),
        ({"id": "bad", "image": "a.jpg", "video": "v.mp4", "conversations": _conv("x")}, "more than one media key"),
        ({"id": "bad", "audio": "a.wav", "conversations": _conv("x")}, "media key 'audio' is not supported"),
        ({"id": "bad", "videos": ["v.mp4"], "conversations": _conv("x")}, "media key 'videos' is not supported"),
        ({"id": "bad", "image": "a.jpg", "messages": [], "conversations": []}, "more than one of the keys"),
        # placeholder counts
        ({"id": "bad", "image": "a.jpg", "conversations": _conv("<image>\n<image>\nx")}, "2 <image> placeholder"),
        ({"id": "bad", "images": ["a", "b"], "conversations": _conv("<image>\nx")}, "1 <image> placeholder(s)"),
        ({"id": "bad", "conversations": _conv("<image>\nx")}, "but 0 image"),
        ({"id": "bad", "image": "a.jpg", "conversations": _conv("<video>\nx")}, "<video> placeholder"),
        ({"id": "bad", "image": "a.jpg", "conversations": _conv("<image>\nx", "see <image>")}, "outside user turns"),
        (
            {"id": "bad", "video": "v.mp4", "conversations": [*_conv("<video>\nx"), *_conv("<video>\nmore?")]},
            "turn 2 (user) holds",
        ),
        (
            {
                "id": "bad",
                "messages": [{"role": "user", "content": "<image>x"}, {"role": "assistant", "content": "y"}],
                "images": [],
            },
            "but 0 image",
        ),
        (
            {
                "id": "bad",
                "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
                "videos": "v.mp4",
            },
            "'videos' must be a list",
        ),
        (
            {
                "id": "bad",
                "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
                "image": "a.jpg",
            },
            "media key 'image' is not supported",
        ),
        ({"id": "bad", "problem": 3}, "'problem' must be a string"),
    ],
)
def test_malformed_records_name_file_and_id(data: dict, needle: str):
    with pytest.raises(DataError) as info:
        _parse(data)
    message = str(info.value)
    assert needle in message
    assert SOURCE in message and "'bad'" in message
    assert info.value.path == SOURCE and info.value.record_id == "bad"


def test_malformed_record_default_id_in_error():
    with pytest.raises(DataError, match=r"record 'dataset/HPD/train_data.json:7'.*no assistant turn"):
        _parse({"conversations": [{"from": "human", "value": "x"}]})
    with pytest.raises(DataError, match="record 'hpd:7'"):
        _parse({"conversations": []}, id_prefix="hpd")


@pytest.mark.parametrize("data", [["not", "an", "object"], "text", 3])
def test_non_object_record(data):
    with pytest.raises(DataError, match=r"train_data\.json.*record #7 is a"):
        _parse(data)


def test_bad_id_type():
    with pytest.raises(DataError, match="'id' of type list"):
        _parse({"id": ["x"], "conversations": _conv("x")})
