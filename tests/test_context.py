"""The run context's logging filter: log records leave the engine masked, tracebacks included."""

from __future__ import annotations

import io
import logging

from stepengine.context import MaskingFilter
from stepengine.masking import Masker, using_masker


def test_masking_filter_masks_message_arguments_and_attached_traceback() -> None:
    secret = "log" + "-secret-31337"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("stepengine.test-masking-filter")
    logger.addHandler(handler)
    logger.propagate = False
    masker = Masker()
    masker.add(secret)
    try:
        with using_masker(masker):
            logger.warning("token %s in use", secret)
            try:
                raise ValueError(f"bad token {secret}")
            except ValueError:
                logger.exception("failed with %s", secret)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert secret not in text
    assert text.startswith(
        "WARNING token *** in use\nERROR failed with ***\nTraceback (most recent call last):\n"
    )
    assert text.endswith("ValueError: bad token ***\n")
