"""web/server.py: the app's own settings of Gradio (the chat's event queue polled less often)."""
from __future__ import annotations

import logging

from faq_bot.web.server import GRADIO_PROGRESS_POLL_SECONDS, GRADIO_QUEUE_POLL_SECONDS, calm_gradio_queue


def test_gradio_queue_is_polled_every_few_tens_of_milliseconds_not_every_millisecond():
    import gradio as gr

    with gr.Blocks() as blocks:
        gr.Textbox()
    assert blocks._queue.sleep_when_free < GRADIO_QUEUE_POLL_SECONDS     # Gradio's own: 1 ms
    calm_gradio_queue(blocks)
    assert blocks._queue.sleep_when_free == GRADIO_QUEUE_POLL_SECONDS
    assert blocks._queue.progress_update_sleep_when_free == GRADIO_PROGRESS_POLL_SECONDS


def test_a_gradio_without_the_queue_attribute_is_left_alone_and_said_so(caplog):
    class Blocks:
        _queue = object()

    with caplog.at_level(logging.WARNING, logger="faq_bot.web"):
        calm_gradio_queue(Blocks())
    assert "1-ms polling stays" in caplog.text
