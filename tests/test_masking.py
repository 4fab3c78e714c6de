"""Secret masking: every form of a secret disappears from text, streams and exceptions."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepengine.errors import ProcessError, StepExecutionError
from stepengine.masking import (
    MASK,
    ByteStreamMasker,
    MaskedTextStream,
    Masker,
    StreamMasker,
    current_masker,
    mask,
    masked_std_streams,
    scrub_exception,
    using_masker,
)

# A secret never contains the mask character: "***x" as a secret would be a mask next to an "x".
SECRET_CHARS = st.characters(blacklist_characters="*", blacklist_categories=("Cs",))
secrets = st.text(SECRET_CHARS, min_size=4, max_size=40)
filler = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def encodings(secret: str) -> list[str]:
    """The forms a secret is likely printed in: raw, base64 (standard/url-safe), URL- and JSON-escaped."""
    raw = secret.encode()
    forms = [
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    ]
    return [f for f in forms if len(f) >= 4]


@settings(max_examples=300, deadline=None)
@given(
    secret=secrets,
    pieces=st.lists(filler, min_size=1, max_size=6),
    data=st.data(),
)
def test_stream_masker_catches_every_encoding_across_any_chunk_split(
    secret: str, pieces: list[str], data: st.DataObject
) -> None:
    """For random secrets and random chunk splits, no masked stream contains the secret or its encodings."""
    forms = encodings(secret)
    chosen = data.draw(st.lists(st.sampled_from(forms), min_size=1, max_size=6))
    stream = "".join(p + f for p, f in zip(pieces, chosen, strict=False)) + pieces[-1]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=False)]
    masker = Masker()
    masker.add(secret)
    streamer = StreamMasker(masker)
    out = "".join(streamer.feed(chunk) for chunk in chunks) + streamer.flush()
    for form in forms:
        assert form not in out
    assert out.count(MASK) >= 1


@settings(max_examples=200, deadline=None)
@given(secret=secrets, before=filler, after=filler)
def test_mask_leaves_no_form_even_when_forms_overlap(secret: str, before: str, after: str) -> None:
    masker = Masker()
    masker.add(secret)
    text = before + secret + secret[: len(secret) // 2] + "".join(encodings(secret)) + after
    masked = masker.mask(text)
    assert not any(form in masked for form in masker.secrets)


@settings(max_examples=100, deadline=None)
@given(prefix=st.text(min_size=0, max_size=5), secret=secrets)
def test_basic_auth_header_of_user_and_secret_is_masked(prefix: str, secret: str) -> None:
    """``base64("user:secret")`` hides the secret at any alignment of the prefix."""
    masker = Masker()
    masker.add(secret)
    header = base64.b64encode(f"{prefix}:{secret}".encode()).decode()
    decoded_tail = masker.mask(header)
    assert MASK in decoded_tail
    assert base64.b64encode(secret.encode()).decode().rstrip("=") not in decoded_tail


def test_a_secret_that_contains_the_mask_is_still_removed() -> None:
    masker = Masker()
    masker.add("a***")
    # one replacement forms the secret again from the text around it: masking repeats until none is left
    assert masker.mask("aa***") == "***"


def test_each_leaf_of_a_structured_secret_is_masked() -> None:
    masker = Masker()
    masker.add({"user": "alice-admin", "keys": ["k3y-one", {"deep": "k3y-two"}], "port": 5432, "on": True})
    assert masker.mask("alice-admin k3y-one k3y-two 5432 True") == "*** *** *** *** True"


def test_each_line_of_a_multi_line_secret_is_masked_alone() -> None:
    masker = Masker()
    masker.add("-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\nzzzzQQQQ\n-----END KEY-----\n")
    assert masker.mask("line: MIIEpAIBAAKCAQEA") == "line: ***"
    assert masker.mask("zzzzQQQQ\n") == "***\n"


def test_short_values_are_not_masked_and_a_warning_says_so() -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("stepengine")  # the CLI may have set it not to propagate: listen on it
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        masker = Masker()
        masker.add("abc")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert masker.mask("abc abcd") == "abc abcd"
    assert [r.getMessage() for r in records] == [
        "a secret value shorter than 4 characters is not masked; use a longer one"
    ]


def test_child_masker_masks_parent_secrets_and_keeps_its_own() -> None:
    parent = Masker()
    parent.add("parent-secret")
    child = Masker(parent=parent)
    child.add("child-secret")
    assert child.mask("parent-secret child-secret") == "*** ***"
    assert parent.mask("parent-secret child-secret") == "*** child-secret"
    parent.add("later-secret")  # the child's cached pattern follows the parent's changes
    assert child.mask("later-secret") == "***"


def test_mask_data_masks_keys_values_and_named_tuples() -> None:
    from stepengine.errors import Issue

    masker = Masker()
    masker.add("hunter22")
    data = {"hunter22": ["x hunter22", ("hunter22",)], "issue": Issue("bad hunter22")}
    assert masker.mask_data(data) == {"***": ["x ***", ("***",)], "issue": Issue("bad ***")}


def test_step_author_mask_registers_with_the_current_masker() -> None:
    run_masker = Masker()
    with using_masker(run_masker):
        assert mask("token-from-step") == "token-from-step"
        assert current_masker() is run_masker
    assert run_masker.mask("token-from-step") == MASK
    assert current_masker().mask("token-from-step") == "token-from-step"


def test_scrub_exception_masks_the_whole_chain_and_every_attribute() -> None:
    secret = "pa55" + "word!"  # not a literal: traceback source lines must not show it either
    masker = Masker()
    masker.add(secret)
    try:
        try:
            try:
                open(f"/nonexistent/{secret}")
            except OSError as low:
                raise ProcessError(
                    ["git", "clone", f"https://u:{secret}@h/r"], 128, stderr=f"fatal: {secret}"
                ) from low
        except ProcessError as exc:
            raise StepExecutionError(
                section="pull", step_index=0, step_id="c", function="git_clone", cause=exc
            ) from exc
    except StepExecutionError as caught:
        error = scrub_exception(caught, masker)
    text = "".join(traceback.format_exception(error))
    cause = error.__cause__
    assert secret not in text
    assert secret not in repr(error.args) + repr(cause.args) + repr(vars(cause)) + repr(cause.__cause__)
    assert cause.argv == ["git", "clone", "https://u:***@h/r"]
    assert cause.stderr == "fatal: ***"
    assert text.count("***") == 5


def test_masked_text_stream_masks_lines_and_waits_for_the_rest_of_a_split_secret() -> None:
    import io

    target = io.StringIO()
    masker = Masker()
    masker.add("stream-secret-1")
    stream = MaskedTextStream(target, masker)
    stream.write("a stream-sec")
    assert target.getvalue() == ""  # a partial line waits: it may be the start of a secret
    stream.write("ret-1 b\nnext ")
    assert target.getvalue() == "a *** b\n"
    stream.flush()  # a flush releases nothing held back: "next " may start a secret
    assert target.getvalue() == "a *** b\n"
    stream.close_masking()
    assert target.getvalue() == "a *** b\nnext "
    assert stream.getvalue() == target.getvalue()  # anything else is the wrapped stream's


@pytest.mark.parametrize("how", ["two parts with a flush", "a character at a time", "through .buffer"])
def test_masked_text_stream_cannot_be_bypassed_by_pieces_flushes_or_bytes(how: str) -> None:
    """issue 14: each of these printed the secret through a masked stdout."""
    import io

    raw = io.BytesIO()
    target = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    masker = Masker()
    secret = "piece" + "wise-Secret-42"
    masker.add(secret)
    stream = MaskedTextStream(target, masker)
    stream.write("before\n")
    if how == "two parts with a flush":
        stream.write("token=" + secret[:7])
        stream.flush()
        stream.write(secret[7:] + "\n")
    elif how == "a character at a time":
        for char in "token=" + secret + "\n":
            print(char, end="", flush=True, file=stream)
    else:
        stream.buffer.write(b"token=" + secret[:3].encode())
        stream.buffer.flush()
        stream.buffer.write(secret[3:].encode() + b"\n")
    stream.close_masking()
    assert raw.getvalue().decode() == "before\ntoken=***\n"


@settings(max_examples=200, deadline=None)
@given(secret=secrets, pieces=st.lists(filler, min_size=1, max_size=5), data=st.data())
def test_byte_stream_masker_catches_every_form_across_any_byte_split(
    secret: str, pieces: list[str], data: st.DataObject
) -> None:
    """Like the text stream masker, on UTF-8 bytes cut anywhere (even inside a character)."""
    forms = encodings(secret)
    chosen = data.draw(st.lists(st.sampled_from(forms), min_size=1, max_size=5))
    stream = ("".join(p + f for p, f in zip(pieces, chosen, strict=False)) + pieces[-1]).encode(
        "utf-8", "surrogatepass"
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    masker = Masker()
    masker.add(secret)
    streamer = ByteStreamMasker(masker)
    out = (
        b"".join(streamer.feed(stream[a:b]) for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=False))
        + streamer.flush()
    )
    for form in forms:
        assert form.encode("utf-8", "surrogatepass") not in out
    assert out.count(MASK.encode()) >= 1


def test_masking_a_thousand_secrets_finds_each_one_in_one_pass() -> None:
    """1,000 secrets (14,000 forms): the automaton finds every one, next to and inside others."""
    import os

    masker = Masker()
    secrets_ = [f"tok-{i:04d}-" + os.urandom(8).hex() for i in range(1000)]
    for secret in secrets_:
        masker.add(secret)
    text = (
        " ".join(f"<{s}>" for s in secrets_[::-7])
        + " "
        + base64.b64encode(secrets_[3].encode()).decode().rstrip("=")
    )
    masked = masker.mask(text)
    assert not any(s in masked for s in secrets_)
    assert masked.startswith("<***> <***>") and masked.endswith(" ***") and masked.count("***") == 144


def test_masked_std_streams_wraps_and_restores_stdout_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    masker = Masker()
    masker.add("printed-secret")
    before = sys.stdout, sys.stderr
    with masked_std_streams(masker):
        print("out printed-secret")
        print("err printed-secret", file=sys.stderr, end="")
    assert (sys.stdout, sys.stderr) == before
    assert capsys.readouterr() == ("out ***\n", "err ***")


@settings(max_examples=300, deadline=None)
@given(
    forms=st.lists(st.binary(min_size=4, max_size=14), min_size=1, max_size=12),
    data=st.data(),
)
def test_the_two_pass_search_finds_exactly_what_one_whole_search_finds(
    forms: list[bytes], data: st.DataObject
) -> None:
    """The first pass (form prefixes) only narrows where the automaton of the whole forms looks: the
    spans are those of one overlapping search of the whole text, however forms share prefixes, nest
    or touch (issue 16: the fast path for 1,000 secrets)."""
    import ahocorasick_rs

    from stepengine.masking import _span_finder

    # texts made of forms, their pieces and other bytes, so forms overlap, nest and repeat
    pieces = st.one_of(
        st.sampled_from(forms),
        st.sampled_from(forms).map(lambda f: f[: len(f) // 2]),
        st.sampled_from(forms).map(lambda f: f[len(f) // 3 :]),
        st.binary(max_size=8),
    )
    text = b"".join(data.draw(st.lists(pieces, max_size=30)))
    ordered = sorted(set(forms), key=len, reverse=True)
    spans, every = _span_finder(ordered)
    whole = ahocorasick_rs.BytesAhoCorasick(ordered, matchkind=ahocorasick_rs.MatchKind.Standard)
    expected = {(s, e) for _, s, e in whole.find_matches_as_indexes(text, overlapping=True)}
    assert every and set(spans(text)) == expected
