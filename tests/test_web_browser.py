"""What a visitor sees, in a real headless Chromium (Debian's, driven by Playwright): the widget
on the demo page, XSS attempts through questions and pages, and the Gradio chat. Screenshots go
to test-output/ for a person to look at."""
from __future__ import annotations

import shutil

import pytest
from helpers import ENGLISH_QUESTION, http_json, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser

XSS_QUESTION = '<img src=x onerror="window.__xss=1;alert(1)">閱讀理解模型用什麼微調'


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium") and not shutil.os.path.exists(CHROMIUM):
        pytest.fail("Debian chromium is not installed (apt-get install chromium chromium-driver; .ci/run does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def _widget_ask(page, question: str):
    host = page.locator("#faq-bot-widget")
    panel = host.locator(".panel")
    if panel.is_hidden():
        host.locator("button.fab").click()
    answers = host.locator(".msg.a, .msg.err, .msg.wait")
    before = answers.count()              # counted before asking: a fast answer must not be missed
    page.keyboard.type(question)          # the input has focus once the panel opens
    page.keyboard.press("Enter")
    answers.nth(before).wait_for(timeout=60_000)
    return host


def test_widget_answers_with_a_citation_link(server, page, output_dir):
    page.goto(server.url + "/widget-demo")
    host = page.locator("#faq-bot-widget")
    fab = host.locator("button.fab")
    fab.focus()
    page.keyboard.press("Enter")            # keyboard opens it
    assert host.locator(".panel").is_visible()
    host = _widget_ask(page, "你們做語音去噪最後模型多大？")
    answer = host.locator(".msg.a").last
    assert "9 MB" in answer.inner_text()
    link = answer.locator("a").first
    # the section's link, with a text fragment that highlights the quoted sentence
    assert link.get_attribute("href").startswith("https://example.org/speech#語音增強-speech-enhancement:~:text=")
    assert link.get_attribute("target") == "_blank"
    # the host page's styles do not leak in (its buttons are hot pink, 30px)
    assert fab.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(29, 78, 216)"
    assert page.locator("#host-button").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(255, 105, 180)"
    page.screenshot(path=str(output_dir / "widget-answer.png"))
    page.keyboard.press("Escape")
    assert host.locator(".panel").is_hidden()


def test_widget_replies_to_a_greeting_in_kind_then_answers(server, page, output_dir):
    page.goto(server.url + "/widget-demo")
    host = _widget_ask(page, "你好")
    reply = host.locator(".msg.a").last
    assert "Deep Learning 101" in reply.inner_text()
    assert "沒有回答" not in reply.inner_text() and reply.locator("a").count() == 0
    assert reply.get_attribute("data-mode") == "small_talk"
    host = _widget_ask(page, "謝謝！你們做語音去噪最後模型多大？")
    assert "9 MB" in host.locator(".msg.a").last.inner_text()
    page.screenshot(path=str(output_dir / "widget-small-talk.png"))


def test_widget_fits_a_phone_screen(server, browser, output_dir):
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    try:
        pg.goto(server.url + "/widget-demo")
        host = pg.locator("#faq-bot-widget")
        host.locator("button.fab").tap()
        box = host.locator(".panel").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["y"] >= 0
        pg.screenshot(path=str(output_dir / "widget-phone.png"))
    finally:
        context.close()


def test_widget_renders_questions_and_pages_as_text(server, page, output_dir):
    page.goto(server.url + "/widget-demo")
    host = _widget_ask(page, XSS_QUESTION)
    host = _widget_ask(page, "corpus-xss 閱讀理解模型使用 BERT 微調")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    assert host.locator("img").count() == 0 and host.locator("script").count() == 0
    assert XSS_QUESTION in host.locator(".msg.q").first.inner_text()
    assert '<script>alert("corpus-xss")</script>' in host.locator(".log").inner_text()
    page.screenshot(path=str(output_dir / "widget-xss.png"))


def _open_chat(page, url: str):
    """The chat page, once its question box is there; returns the box."""
    page.goto(url + "/")
    box = page.locator("#faq-question textarea")
    box.wait_for(timeout=60_000)
    return box


def test_gradio_chat_answers_and_renders_text_only(server, page, output_dir):
    box = _open_chat(page, server.url)
    box.fill("你們做語音去噪最後模型多大？")
    box.press("Enter")
    page.wait_for_function("document.querySelector('#faq-chat') && document.querySelector('#faq-chat').innerText.includes('9 MB')",
                           timeout=60_000)
    link = page.locator("#faq-chat a[href^='https://example.org/speech']").first
    assert link.get_attribute("target") == "_blank"
    page.screenshot(path=str(output_dir / "gradio-answer.png"), full_page=True)

    box.fill(XSS_QUESTION)
    box.press("Enter")
    page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('onerror')", timeout=60_000)
    box.fill("corpus-xss 閱讀理解模型使用 BERT 微調")
    box.press("Enter")
    page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('corpus-xss\")')", timeout=60_000)
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    assert page.locator("#faq-chat img[src='x']").count() == 0
    assert XSS_QUESTION.split(">")[0] in page.locator("#faq-chat").inner_text()    # shown as text
    page.screenshot(path=str(output_dir / "gradio-xss.png"), full_page=True)


def _feedback_records(server) -> list[dict]:
    import json

    if not server.feedback_log.exists():
        return []
    lines = server.feedback_log.read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "feedback"]


def test_gradio_follow_up_and_feedback_are_logged(server, page, output_dir):
    import time

    from helpers import run_cli

    box = _open_chat(page, server.url)
    chat = page.locator("#faq-chat")
    box.fill("語音去噪模型多大？")
    box.press("Enter")
    page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('9 MB')", timeout=60_000)
    first_links = chat.locator("a[href^='https://example.org/']").count()
    box.fill("那它的 RTF 呢？")
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll(\"#faq-chat a[href^='https://example.org/']\").length > {first_links}",
                           timeout=60_000)
    # the follow-up is answered from the denoiser page: its first citation links there
    assert chat.locator("[aria-label='Like']").count() == 2     # one 👍/👎 pair per answer
    follow_up_links = chat.locator("a[href^='https://example.org/']").nth(first_links)
    assert follow_up_links.get_attribute("href").startswith("https://example.org/speech#")
    before = len(_feedback_records(server))
    chat.locator("[aria-label='Dislike']").first.click()
    chat.locator("[aria-label='Like']").last.click()
    deadline = time.monotonic() + 30
    while len(_feedback_records(server)) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    records = _feedback_records(server)[before:]
    page.screenshot(path=str(output_dir / "gradio-follow-up-feedback.png"), full_page=True)
    assert len(records) == 2
    assert {r["question"]: r["liked"] for r in records} == {"語音去噪模型多大？": False, "那它的 RTF 呢？": True}
    assert all(r["channel"] == "ui" and "RTF" in r["answer"] for r in records)
    report = run_cli("report", "--config", str(server.config))
    assert report.returncode == 0, report.stderr
    assert "👍" in report.stdout and "answers rated 👎:" in report.stdout
    assert "語音去噪模型多大？" in report.stdout.split("answers rated 👎:")[1]


def test_chat_and_widget_show_progress_while_the_index_is_pulled(tmp_path, browser, fixture_archive, output_dir):
    """A server started with no index, pulling settings.index_url (held at half way by the file
    server): the chat shows "正在下載索引… 50%" above the conversation and as its reply, the widget a
    short notice instead of an error; once the download ends the same page answers."""
    from helpers import GatedFile, start_empty_server, wait_for_health

    gated = GatedFile(fixture_archive.read_bytes())
    proc, url, _ = start_empty_server(tmp_path, {"index_url": gated.url})
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        wait_for_health(url, proc, lambda s: s["state"] == "pulling" and (s["progress"] or 0) >= 0.5)
        page.goto(url + "/")
        notice = page.locator("#faq-status")
        page.wait_for_function("document.querySelector('#faq-status') && "
                               "document.querySelector('#faq-status').innerText.includes('正在下載索引… 50%')",
                               timeout=60_000)
        box = page.locator("#faq-question textarea")
        box.fill("你們做語音去噪最後模型多大？")
        box.press("Enter")
        page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('請稍候再問')", timeout=60_000)
        page.screenshot(path=str(output_dir / "gradio-pulling.png"), full_page=True)

        widget = context.new_page()
        widget.goto(url + "/widget-demo")
        host = _widget_ask(widget, "你們做語音去噪最後模型多大？")
        waiting = host.locator(".msg.wait").last
        assert "正在下載索引… 50%" in waiting.inner_text() and host.locator(".msg.err").count() == 0
        widget.screenshot(path=str(output_dir / "widget-pulling.png"))

        gated.release()
        page.wait_for_function("!document.querySelector('#faq-status') || "
                               "document.querySelector('#faq-status').innerText.trim() === '' || "
                               "document.querySelector('#faq-status').offsetParent === null", timeout=60_000)
        assert notice.count() == 0 or not notice.is_visible()
        box.fill("你們做語音去噪最後模型多大？")
        box.press("Enter")
        page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('9 MB')", timeout=60_000)
        page.screenshot(path=str(output_dir / "gradio-after-pull.png"), full_page=True)
        host = _widget_ask(widget, "你們做語音去噪最後模型多大？")
        assert "9 MB" in host.locator(".msg.a").last.inner_text()
    finally:
        context.close()
        proc.terminate()
        proc.wait(timeout=20)
        gated.stop()


def test_the_chat_refuses_invalid_unicode_with_a_message(server, page):
    """A lone surrogate typed into the page (JSON.stringify sends it as \\ud800) gets a ⚠️ reply."""
    box = _open_chat(page, server.url)
    box.evaluate("(el) => { el.value = '語音\\ud800去噪'; el.dispatchEvent(new Event('input', {bubbles: true})); }")
    box.press("Enter")
    page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('invalid Unicode')",
                           timeout=60_000)


def test_the_chat_and_its_ratings_share_the_rate_limit(tmp_path, fixture_index, browser, output_dir):
    """Two questions a minute, one budget for the JSON API and the chat (both keyed by the client's
    address): after one question through /api/ask and one in the chat, the next gets a ⚠️ reply
    in the chat, and a rating past the limit is not written to the visitor log."""
    import json

    srv = start_server(tmp_path, fixture_index, rate_limit=2)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    try:
        box = _open_chat(pg, srv.url)
        chat = pg.locator("#faq-chat")
        assert http_json(srv.url + "/api/ask", {"question": "語音去噪模型多大？"})[0] == 200
        box.fill("混合檢索是怎麼做的")
        box.press("Enter")
        pg.wait_for_function("document.querySelectorAll(\"#faq-chat [aria-label='Like']\").length >= 1",
                             timeout=60_000)
        box.fill("等錯誤率 EER 是怎麼定義的")
        box.press("Enter")
        pg.wait_for_function("document.querySelector('#faq-chat').innerText.includes('too many questions')",
                             timeout=60_000)
        chat.locator("[aria-label='Like']").first.click()
        toast = pg.get_by_text("too many questions", exact=False).and_(pg.locator(":not(#faq-chat *)"))
        toast.first.wait_for(timeout=60_000)           # the refused rating says so
        pg.screenshot(path=str(output_dir / "gradio-rate-limit.png"), full_page=True)
        records = [json.loads(line) for line in srv.feedback_log.read_text(encoding="utf-8").splitlines()]
    finally:
        context.close()
        srv.stop()
    assert [(r["type"], r["channel"]) for r in records] == [("question", "api"), ("question", "ui")]


# ---------------------------------------------------------------- written answers, streamed

# Records the text being written as the widget's log changes. It reads the changed nodes of each
# mutation record, not the log as it is when the observer runs: when the last tokens and the final
# answer arrive in one network read, the writing element is added, filled and replaced in one task,
# and is already gone from the log by then.
_WATCH_WIDGET = """() => {
  const root = document.querySelector('#faq-bot-widget').shadowRoot;
  window.__writing = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const target = r.target.nodeType === 3 ? r.target.parentElement : r.target;
      const found = [...r.addedNodes].filter(n => n.classList && n.classList.contains('writing'));
      const inside = target && target.closest ? target.closest('.msg.writing') : null;
      for (const w of (inside ? [inside] : []).concat(found)) {
        const text = w.querySelector('p') ? w.querySelector('p').textContent : '';
        if (text && window.__writing[window.__writing.length - 1] !== text) window.__writing.push(text);
      }
    }
  }).observe(root.querySelector('.log'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.mark.llm
def test_widget_streams_the_written_answer_then_shows_it_with_its_passages(llm_web, page, output_dir):
    page.goto(llm_web.url + "/widget-demo")
    host = page.locator("#faq-bot-widget")
    host.locator("button.fab").click()
    page.evaluate(_WATCH_WIDGET)
    page.keyboard.type("語音去噪最後的模型大小是多少？RTF 呢？")
    page.keyboard.press("Enter")
    final = host.locator(".msg.a")
    final.first.wait_for(timeout=600_000)
    assert host.locator(".msg.writing").count() == 0              # replaced by the final answer
    writing = page.evaluate("window.__writing")
    if final.get_attribute("data-mode") == "generated":
        written = final.locator("p.written").inner_text()
        assert writing and written.startswith(writing[0]) and writing[-1] == written
        assert final.locator("blockquote").count() >= 1 and "9 MB" in final.inner_text()
    else:
        assert writing == [] and "9 MB" in final.inner_text()
    link = final.locator("a").first
    assert link.get_attribute("href").startswith("https://example.org/speech")
    page.screenshot(path=str(output_dir / "widget-written-answer.png"))


# Records the chat's text as it changes.
_WATCH_CHAT = """() => {
  window.__chat = [];
  const chat = document.querySelector('#faq-chat');
  new MutationObserver(() => {
    const text = chat.innerText;
    if (window.__chat[window.__chat.length - 1] !== text) window.__chat.push(text);
  }).observe(chat, {childList: true, subtree: true, characterData: true});
}"""


@pytest.mark.llm
def test_gradio_chat_streams_the_written_answer(llm_web, page, output_dir):
    box = _open_chat(page, llm_web.url)
    page.evaluate(_WATCH_CHAT)
    box.fill(ENGLISH_QUESTION)
    box.press("Enter")
    page.wait_for_function("document.querySelector('#faq-chat').innerText.includes('Sources')", timeout=600_000)
    seen = page.evaluate("window.__chat")
    assert any("撰寫中" in s for s in seen)                    # it showed the answer being written
    final = seen[-1]
    assert "撰寫中" not in final and "Kaldi" in final
    if "引用段落" in final:          # a written answer: the streamed text grew into it
        written = [s.split("✍️")[0].strip() for s in seen if "撰寫中" in s]
        longest = max(written, key=len)
        assert longest and longest.splitlines()[-1][:12] in final, (longest, final)
    page.screenshot(path=str(output_dir / "gradio-written-answer.png"), full_page=True)
