/*
 * Deep Learning 101 FAQ widget. One tag on any page:
 *   <script src="https://<faq-bot server>/widget.js" defer></script>
 * adds a chat button; the panel asks the server's /api/ask and shows the passages with their
 * citations. No framework, no CDN. Everything lives in a shadow root, so the page's styles do not
 * reach in and ours do not leak out. Text from questions and pages is set with textContent only;
 * links must be http(s).
 */
(function () {
  "use strict";
  if (window.__faqBotWidget) return;
  window.__faqBotWidget = true;

  var script = document.currentScript;
  var server = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var endpoint = server + "/api/ask";

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
      var box = el("div", { class: "msg a" });
      if (data.answerable) {
        (data.citations || []).forEach(function (c) {
          box.appendChild(el("p", {}, c.snippet + " [" + c.n + "]"));
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
      fetch(endpoint, { method: "POST", headers: { "Content-Type": "application/json" },
                        body: JSON.stringify({ question: question, history: history.slice(-5) }) })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (d) { return { ok: r.ok, status: r.status, data: d }; });
        })
        .then(function (res) {
          waiting.remove();
          if (res.status === 503 && res.data.error) {
            // the server is still getting its index: a notice with how far it is, not an error
            log.appendChild(el("p", { class: "msg wait note" }, "⏳ " + res.data.error + "，請稍後再問。"));
            return;
          }
          if (!res.ok) {
            log.appendChild(el("p", { class: "msg err" }, res.data.error || "伺服器沒有回應，請稍後再試。"));
            return;
          }
          history.push(question);
          showAnswer(res.data);
        })
        .catch(function () {
          waiting.remove();
          log.appendChild(el("p", { class: "msg err" }, "無法連線到問答伺服器，請稍後再試。"));
        })
        .then(function () {
          send.disabled = false;
          log.scrollTop = log.scrollHeight;
          input.focus();
        });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
