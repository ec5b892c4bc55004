"""The Gradio chat: the Hugging Face Space page.

Answers are the core's escaped Markdown (every page or question character is backslash-escaped,
links are http(s) only), rendered by a Chatbot that also sanitises HTML: text from a question or a
page is shown, never run.
"""
from __future__ import annotations

import re

import gradio as gr

from ..answer import escape_markdown
from ..generate import Final
from ..retrieve import QuestionError
from .guard import RequestError
from .live import IndexNotReady
from .service import Asker, RateLimited, client_key

TITLE = "Deep Learning 101 FAQ 問答小幫手"
INTRO = ("用中文（繁體或簡體）或英文提問，小幫手會從 [Deep Learning 101](https://deep-learning-101.github.io/) "
         "的頁面找出回答的段落，並附上來源連結 [1] [2]。找不到時會直接說明，並列出最接近的頁面。")


# Chats answered at once. A hosted endpoint serves many requests together; the local llama.cpp
# server takes one at a time and queues the rest, as Gradio would.
CHAT_CONCURRENCY = 4
# Shown after the text while the answer is still being written.
WRITING = " ✍️ *撰寫中… writing…*"


def _text(content) -> str:
    """A chat message's text (Gradio 6 messages may carry a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    return str(content or "")


def _unescape(text: str) -> str:
    """A question as typed, from its escaped chat message."""
    return re.sub(r"\\(.)", r"\1", text)


def _shown(text: object) -> str:
    """A question as the chat shows it: text that any encoding can write (a lone surrogate becomes ?)."""
    return str(text or "").encode("utf-8", "replace").decode("utf-8")


def build_ui(asker: Asker) -> gr.Blocks:
    """The chat page. Its events and its API endpoint go through `asker` like the JSON API: the
    same rate limit (by client address), checks, answer cache and visitor log."""
    settings = asker.live.config.settings

    def respond(message: str, history: list[dict], request: gr.Request):
        """The chat's turn, streamed: a written answer shows its verified sentences as they come,
        then the final answer (with its passages and sources) replaces them."""
        history = list(history) if isinstance(history, list) else []
        if isinstance(message, str) and not message.strip():
            yield "", history
            return
        earlier = [_unescape(_text(m.get("content"))) for m in history
                   if isinstance(m, dict) and m.get("role") == "user"]
        # the question is shown as typed: escaped, so markup in it is text, never HTML
        history += [{"role": "user", "content": escape_markdown(_shown(message).strip())}]
        try:
            asker.admit(client_key(request))
            events = asker.ask_stream(message, earlier, channel="ui")
        except (QuestionError, RequestError, RateLimited) as exc:
            yield "", history + [{"role": "assistant", "content": f"⚠️ {exc}"}]
            return
        except IndexNotReady as exc:
            yield "", history + [{"role": "assistant", "content": f"⏳ {exc}，請稍候再問。"}]
            return
        written = ""
        if asker.writer is not None:       # the model reads its prompt for a few seconds first
            yield "", history + [{"role": "assistant", "content": WRITING.strip()}]
        for event in events:
            if isinstance(event, Final):
                yield "", history + [{"role": "assistant", "content": event.answer.to_markdown()}]
                return
            written += event.text
            yield "", history + [{"role": "assistant", "content": escape_markdown(written) + WRITING}]

    def ask_api(question: str, request: gr.Request) -> dict:
        """The Gradio API endpoint (gradio_client): one question, the answer as a dict."""
        try:
            asker.admit(client_key(request))
            return asker.ask(question, None, channel="gradio").to_dict()
        except (QuestionError, RequestError, RateLimited, IndexNotReady) as exc:
            return {"error": str(exc)}

    def on_like(history: list[dict], data: gr.LikeData, request: gr.Request) -> None:
        try:   # a rating is a request like a question: a client over the limit is not logged
            asker.admit(client_key(request))
        except RateLimited as exc:
            gr.Warning(str(exc))
            return
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        if not isinstance(history, list) or not isinstance(index, int) or not 0 <= index < len(history):
            return
        messages = [m if isinstance(m, dict) else {} for m in history[:index + 1]]
        reply = _text(messages[index].get("content"))
        question = next((_unescape(_text(m.get("content"))) for m in reversed(messages[:index])
                         if m.get("role") == "user"), "")
        asker.feedback.rating(_shown(question)[:asker.max_chars], bool(data.liked), _shown(reply), channel="ui")

    def show_status():
        """The notice above the chat while the index is pulled or built ("正在建立索引… 42%"); the
        timer stops once the server answers."""
        status = asker.live.status()
        if status.ready:
            return gr.update(value="", visible=False), gr.Timer(active=False)
        if status.state == "failed":
            return gr.update(value=f"⚠️ **{status.message()}**", visible=True), gr.Timer(active=True)
        text = f"⏳ **{status.message()}** 完成後即可提問，不需重新整理頁面。"
        return gr.update(value=text, visible=True), gr.Timer(active=True)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n\n{INTRO}")
        notice = gr.Markdown(visible=False, elem_id="faq-status")
        timer = gr.Timer(1.0)
        timer.tick(show_status, None, [notice, timer], api_name=False, show_progress="hidden")
        demo.load(show_status, None, [notice, timer], api_name=False, show_progress="hidden")
        chatbot = gr.Chatbot(label="對話", height=520, sanitize_html=True, render_markdown=True,
                             feedback_options=("Like", "Dislike"), elem_id="faq-chat")
        with gr.Row():
            box = gr.Textbox(placeholder="輸入問題，例如：語音去噪模型多大？", show_label=False, scale=8,
                             max_length=settings.max_question_chars, elem_id="faq-question")
            send = gr.Button("送出", variant="primary", scale=1, elem_id="faq-send")
        gr.Examples(examples=list(settings.examples), inputs=box, label="試試這些問題")
        clear = gr.Button("清除對話", variant="secondary")
        # Written answers take seconds each (the model writes; the endpoint answers several at once):
        # up to CHAT_CONCURRENCY chats are answered together, instead of Gradio's one at a time.
        box.submit(respond, [box, chatbot], [box, chatbot], api_name=False, concurrency_limit=CHAT_CONCURRENCY,
                   concurrency_id="chat")
        send.click(respond, [box, chatbot], [box, chatbot], api_name=False, concurrency_limit=CHAT_CONCURRENCY,
                   concurrency_id="chat")
        clear.click(lambda: ("", []), None, [box, chatbot], api_name=False)
        chatbot.like(on_like, [chatbot], None)
        gr.api(ask_api, api_name="ask")
    return demo
