/*
 * Deep Learning 101 FAQ widget. One tag on any page:
 *   <script src="https://<faq-bot server>/widget.js" defer></script>
 * adds a chat button; the panel asks the server's /api/ask/stream and shows the answer as it is
 * written (Server-Sent Events read with fetch), then the final answer: the written text (if any),
 * the passages with their citations and the sources. No framework, no CDN. Everything lives in a shadow root, so the page's styles do not
 * reach in and ours do not leak out. Text from questions and pages is set with textContent only;
 * links must be http(s).
 */
(function () {
  "use strict";
  if (window.__faqBotWidget) return;
  window.__faqBotWidget = true;

  var script = document.currentScript;
  var server = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var endpoint = server + "/api/ask/stream";

  var css = [
    ":host { all: initial; }",
    ".fab { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 56px; height: 56px;",
    "  border-radius: 50%; border: none; background: #1d4ed8; color: #fff; font: 600 24px/1 system-ui, sans-serif;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); cursor: pointer; }",
    ".fab:focus-visible, button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }",
    ".panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483000; width: min(380px, calc(100vw - 24px));",
    "  height: min(560px, calc(100vh - 110px)); display: flex; flex-direction: column; background: #fff; color: #111827;",
    "  border-radius: 14px; box-shadow: 0 10px 30px rgba(0,0,0,.3); font: 15px/1.55 system-ui, -apple-system, 'Noto Sans TC', sans-serif; overflow: hidden; }",
    ".panel[hidden] { display: none; }",
    "@media (max-width: 480px) { .panel { right: 12px; bottom: 80px; } .fab { right: 12px; bottom: 12px; } }",
    "header { display: flex; align-items: center; justify-content: space-between; padding: 10px 14px; background: #1d4ed8; color: #fff; font-weight: 600; }",
    "header button { background: transparent; color: #fff; border: none; font-size: 20px; cursor: pointer; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px 14px; }",
    ".msg { margin: 0 0 12px; }",
    ".q { background: #eff6ff; border-radius: 10px; padding: 8px 10px; white-space: pre-wrap; word-break: break-word; }",
    ".a p { margin: 0 0 8px; word-break: break-word; }",
    ".a ol, .a ul { margin: 4px 0 0; padding-left: 20px; }",
    ".a a { color: #1d4ed8; }",
    ".note { color: #6b7280; font-size: 13px; }",
    ".a blockquote { margin: 0 0 8px; padding: 2px 0 2px 10px; border-left: 3px solid #bfdbfe; color: #374151; word-break: break-word; }",
    ".writing p { margin: 0 0 4px; white-space: pre-wrap; word-break: break-word; }",
    ".err { color: #b91c1c; }",
    "form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e5e7eb; }",
    "input { flex: 1; min-width: 0; font: inherit; padding: 8px 10px; border: 1px solid #d1d5db; border-radius: 8px; }",
    "form button { font: inherit; padding: 8px 14px; border: none; border-radius: 8px; background: #1d4ed8; color: #fff; cursor: pointer; }",
    "form button[disabled] { opacity: .6; cursor: wait; }"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(url, label) {
    if (!/^https?:\/\//i.test(String(url || ""))) return el("span", {}, label);
    var a = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label);
    return a;
  }

  function label(c) { return c.section ? c.title + " › " + c.section : c.title; }

  function mount() {
    var host = el("div", { id: "faq-bot-widget" });
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    root.appendChild(el("style", {}, css));

    var fab = el("button", { class: "fab", type: "button", "aria-label": "開啟 Deep Learning 101 問答", "aria-expanded": "false", "aria-controls": "faq-panel" }, "?");
    var panel = el("section", { class: "panel", id: "faq-panel", role: "dialog", "aria-label": "Deep Learning 101 問答" });
    panel.hidden = true;
    var header = el("header");
    header.appendChild(el("span", {}, "Deep Learning 101 問答"));
    var close = el("button", { type: "button", "aria-label": "關閉" }, "×");
    header.appendChild(close);
    var log = el("div", { class: "log", role: "log", "aria-live": "polite" });
    log.appendChild(el("p", { class: "note" }, "請輸入問題，回答會附上來源頁面連結。Ask in Chinese or English."));
    var form = el("form");
    var input = el("input", { type: "text", name: "question", maxlength: "2000", autocomplete: "off", placeholder: "例如：語音去噪模型多大？", "aria-label": "問題" });
    var send = el("button", { type: "submit" }, "送出");
    form.appendChild(input);
    form.appendChild(send);
    panel.appendChild(header);
    panel.appendChild(log);
    panel.appendChild(form);
    root.appendChild(fab);
    root.appendChild(panel);

    var history = [];

    function open(state) {
      panel.hidden = !state;
      fab.setAttribute("aria-expanded", String(state));
      if (state) input.focus(); else fab.focus();
    }
    fab.addEventListener("click", function () { open(panel.hidden); });
    close.addEventListener("click", function () { open(false); });
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") open(false); });

    function showAnswer(data) {
      var box = el("div", { class: "msg a", "data-mode": data.mode || "extractive" });
      if (data.note) box.appendChild(el("p", { class: "note" }, data.note));
      if (data.mode === "small_talk") {
        // a greeting, thanks or "who are you": the bot's reply, nothing searched or cited
        box.appendChild(el("p", {}, data.text));
      } else if (data.answerable) {
        if (data.text) {
          // the written answer, then the passages it rests on
          box.appendChild(el("p", { class: "written" }, data.text));
          box.appendChild(el("div", { class: "note" }, "引用段落 Passages"));
        }
        (data.citations || []).forEach(function (c) {
          box.appendChild(el(data.text ? "blockquote" : "p", {}, c.snippet + " [" + c.n + "]"));
        });
        box.appendChild(el("div", { class: "note" }, "來源 Sources"));
        var list = el("ol");
        (data.citations || []).forEach(function (c) {
          var li = el("li", { value: String(c.n) });
          li.appendChild(link(c.url, label(c)));
          list.appendChild(li);
        });
        box.appendChild(list);
      } else {
        box.appendChild(el("p", {}, "入口網站的頁面沒有回答這個問題。(The portal does not cover this question.)"));
        if ((data.suggestions || []).length) {
          box.appendChild(el("div", { class: "note" }, "最接近的頁面 Closest pages"));
          var ul = el("ul");
          data.suggestions.forEach(function (c) {
            var li = el("li");
            li.appendChild(link(c.url, label(c)));
            ul.appendChild(li);
          });
          box.appendChild(ul);
        }
      }
      log.appendChild(box);
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var question = input.value.trim();
      if (!question) { input.focus(); return; }
      log.appendChild(el("p", { class: "msg q" }, question));
      input.value = "";
      send.disabled = true;
      var waiting = el("p", { class: "note" }, "查詢中…");
      log.appendChild(waiting);
      log.scrollTop = log.scrollHeight;
      var writing = null;     // the answer as it is written, replaced by the final answer
      function onEvent(name, data) {
        if (name === "token") {
          if (!writing) {
            waiting.remove();
            writing = el("div", { class: "msg writing", "aria-busy": "true" });
            writing.appendChild(el("p", {}, ""));
            writing.appendChild(el("div", { class: "note" }, "撰寫中… writing…"));
            log.appendChild(writing);
          }
          writing.firstChild.textContent += data.text || "";
          log.scrollTop = log.scrollHeight;
        } else if (name === "final") {
          if (writing) writing.remove();
          history.push(question);
          showAnswer(data);
        } else if (name === "error") {
          if (writing) writing.remove();
          log.appendChild(el("p", { class: "msg err" }, data.error || "回答失敗，請再問一次。"));
        }
      }
      fetch(endpoint, { method: "POST", headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
                        body: JSON.stringify({ question: question, history: history.slice(-5) }) })
        .then(function (r) {
          if (r.ok && /^text\/event-stream/.test(r.headers.get("Content-Type") || "")) {
            return readEvents(r, onEvent).then(function (ended) {
              waiting.remove();
              if (!ended) {
                if (writing) writing.remove();
                log.appendChild(el("p", { class: "msg err" }, "回答中斷，請再問一次。"));
              }
            });
          }
          return r.json().catch(function () { return {}; }).then(function (data) {
            waiting.remove();
            if (r.status === 503 && data.error) {
              // the server is still getting its index: a notice with how far it is, not an error
              log.appendChild(el("p", { class: "msg wait note" }, "⏳ " + data.error + "，請稍後再問。"));
            } else {
              log.appendChild(el("p", { class: "msg err" }, data.error || "伺服器沒有回應，請稍後再試。"));
            }
          });
        })
        .catch(function () {
          waiting.remove();
          if (writing) writing.remove();
          log.appendChild(el("p", { class: "msg err" }, "無法連線到問答伺服器，請稍後再試。"));
        })
        .then(function () {
          send.disabled = false;
          log.scrollTop = log.scrollHeight;
          input.focus();
        });
    });
  }

  // Reads a text/event-stream body, calling onEvent(name, data) per event; resolves to true once a
  // final or error event arrived (false: the stream ended without one).
  function readEvents(response, onEvent) {
    var ended = false;
    var buffer = "";
    function dispatch(block) {
      var name = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (!data.length) return;               // a keep-alive comment
      var parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch (e) { return; }
      if (name === "final" || name === "error") ended = true;
      onEvent(name, parsed);
    }
    function feed(text) {
      buffer += text.replace(/\r\n?/g, "\n");
      var at;
      while (!ended && (at = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, at));
        buffer = buffer.slice(at + 2);
      }
    }
    if (!response.body || !response.body.getReader || typeof TextDecoder === "undefined") {
      return response.text().then(function (text) { feed(text + "\n\n"); return ended; });
    }
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    function pump() {
      return reader.read().then(function (step) {
        if (step.done) { feed(decoder.decode() + "\n\n"); return ended; }
        feed(decoder.decode(step.value, { stream: true }));
        if (ended) { reader.cancel().catch(function () {}); return true; }
        return pump();
      });
    }
    return pump();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
