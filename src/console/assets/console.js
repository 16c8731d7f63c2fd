// devin-notify console: calls /api/v1 with the session cookie and refreshes every few seconds.
// No framework, no external resource; every value is written as text, never as HTML.
"use strict";
(function () {
  var REFRESH_MS = 3000;
  var last = {};
  var openDetails = {};

  function $(id) { return document.getElementById(id); }

  // el("td", {class: "num", text: "3"}, child...)
  function el(tag, attrs) {
    var e = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (k) {
      var v = a[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") e.textContent = String(v);
      else if (k === "class") e.className = v;
      else if (k.indexOf("data-") === 0) e.setAttribute(k, v);
      else if (k === "disabled" || k === "hidden" || k === "open") e[k] = true;
      else e.setAttribute(k, v);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === undefined || c === null) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch("/api/v1" + path, init).then(function (res) {
      if (res.status === 401) {
        window.location.assign("/ui/sign-in");
        throw new Error("signed out");
      }
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) throw new Error((data && data.error) || ("HTTP " + res.status));
        return data;
      });
    });
  }

  function notice(text, isError) {
    var n = $("notice");
    n.textContent = text;
    n.className = isError ? "error" : "";
  }

  function when(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function enc(s) { return encodeURIComponent(s); }

  // Renders only what changed, keeping the focused control focused.
  function render(key, data, fn) {
    var text = JSON.stringify(data);
    if (last[key] === text) return;
    last[key] = text;
    var focused = document.activeElement && document.activeElement.id;
    fn(data);
    if (focused && document.activeElement && document.activeElement.id !== focused) {
      var f = $(focused);
      if (f) f.focus();
    }
  }

  function fact(dl, name, value, cls) {
    dl.appendChild(el("div", {}, el("dt", { text: name }), el("dd", { text: value, class: cls })));
  }

  function renderStatus(s) {
    var dl = $("status-list");
    dl.textContent = "";
    fact(dl, "Role", s.role);
    fact(dl, "Ready", s.ready ? "yes" : "no: " + s.not_ready_because, s.ready ? "ok" : "bad");
    var p = s.last_poll;
    var lastPoll = p ? when(p.at) + " — " + (p.outcome === "ok"
      ? "ok (" + p.events + " events, " + p.deliveries + " deliveries, " + p.duration_ms + " ms)"
      : "error: " + p.error) : (s.role === "leader" ? "none yet" : "— (standby)");
    fact(dl, "Last poll", lastPoll, p ? (p.outcome === "ok" ? "ok" : "bad") : undefined);
    fact(dl, "Next poll", s.polling_since ? "polling since " + when(s.polling_since) : when(s.next_poll));
    fact(dl, "Last successful poll", when(s.last_successful_poll));
    fact(dl, "Last error", s.last_error ? when(s.last_error.at) + " (" + s.last_error.what + "): " + s.last_error.message : "none",
      s.last_error ? "warn" : undefined);
    fact(dl, "Config reloaded at", s.config_reloaded_at ? when(s.config_reloaded_at) : "not since the start");
    fact(dl, "Queued", String(s.queued));
    fact(dl, "Dead letters", String(s.dead_letters), s.dead_letters ? "warn" : undefined);
    fact(dl, "Paused sinks", String(s.paused_sinks), s.paused_sinks ? "bad" : undefined);
    fact(dl, "Store", s.store);
    fact(dl, "Running since", when(s.started_at));
  }

  function renderSinks(sinks) {
    var body = $("sinks-table").tBodies[0];
    body.textContent = "";
    sinks.forEach(function (s) {
      var state = s.state + (s.paused_reason ? ": " + s.paused_reason : "");
      body.appendChild(el("tr", { "data-sink": s.name },
        el("th", { scope: "row", "data-label": "Sink", text: s.name }),
        el("td", { "data-label": "Type", text: s.type }),
        el("td", { "data-label": "Host", text: s.host || "—" }),
        el("td", { "data-label": "State", text: state, class: s.state === "active" ? "ok" : "bad" }),
        el("td", { "data-label": "Queued", class: "num", text: String(s.queued) }),
        el("td", { "data-label": "Dead letters", class: "num", text: String(s.dead_letters) }),
        el("td", { "data-label": "Actions", class: "actions" }, el("div", {},
          el("button", {
            type: "button", id: "resume-" + s.name, "data-action": "resume", "data-sink": s.name,
            disabled: s.state !== "paused", "aria-label": "Resume " + s.name, text: "Resume"
          })))));
    });
    var select = $("dead-sink");
    var chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    sinks.forEach(function (s) { select.appendChild(el("option", { value: s.name, text: s.name })); });
    select.value = chosen;
  }

  function renderDead(letters) {
    var body = $("dead-table").tBodies[0];
    body.textContent = "";
    $("dead-empty").hidden = letters.length > 0;
    $("retry-all").disabled = letters.length === 0;
    letters.forEach(function (d) {
      var details = el("details", { "data-id": d.id, open: !!openDetails[d.id] },
        el("summary", { text: "Payload" }),
        el("pre", { text: d.payload === null ? "(not rendered: retried with the current templates)" : JSON.stringify(d.payload, null, 2) }));
      details.addEventListener("toggle", function () { openDetails[d.id] = details.open; });
      var error = d.reason;
      if (d.response_body && d.reason.indexOf(d.response_body) < 0) error += " — " + d.response_body.slice(0, 300);
      body.appendChild(el("tr", { "data-id": d.id },
        el("td", { "data-label": "Failed at", text: when(d.failed_at) }),
        el("td", { "data-label": "Event", text: d.event_type }),
        el("td", { "data-label": "Session", text: d.session_id }),
        el("td", { "data-label": "Sink", text: d.sink }),
        el("td", { "data-label": "Attempts", class: "num", text: String(d.attempts) }),
        el("td", { "data-label": "HTTP status", class: "num", text: d.status === null ? "—" : String(d.status) }),
        el("td", { "data-label": "Last error", text: error }),
        el("td", { "data-label": "Payload" }, details),
        el("td", { "data-label": "Actions", class: "actions" }, el("div", {},
          el("button", { type: "button", id: "retry-" + d.id, "data-action": "retry", "data-id": d.id, "aria-label": "Retry " + d.id, text: "Retry" }),
          el("button", { type: "button", id: "purge-" + d.id, class: "danger", "data-action": "purge", "data-id": d.id, "aria-label": "Purge " + d.id, text: "Purge" })))));
    });
  }

  function renderRules(rules) {
    var list = $("rules-list");
    list.textContent = "";
    if (rules.length === 0) list.appendChild(el("p", { class: "empty", text: "No rules." }));
    rules.forEach(function (r) {
      var when = Object.keys(r.when).map(function (k) { return k + " = " + JSON.stringify(r.when[k]); }).join(", ");
      list.appendChild(el("article", { class: "rule", "data-rule": r.name },
        el("div", { class: "rule-head" },
          el("h3", { text: r.name }),
          el("span", { class: "small", text: r.events.join(", ") + " → " + r.sinks.join(", ") }),
          el("button", { type: "button", id: "preview-" + r.name, class: "secondary", "data-action": "preview", "data-rule": r.name, "aria-label": "Preview " + r.name, text: "Preview" })),
        when ? el("p", { class: "small", text: "when " + when }) : null,
        r.template ? el("p", { class: "small", text: "template " + r.template }) : null,
        el("div", { class: "preview-out", id: "preview-out-" + r.name, "aria-live": "polite" })));
    });
  }

  function session(id, title) {
    return title ? title + " (" + id + ")" : id;
  }

  function whenMs(ms) {
    return ms ? new Date(ms).toLocaleString() : "—";
  }

  function latency(ms) {
    if (ms === null || ms === undefined) return "—";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }

  function renderDeliveries(list) {
    var body = $("deliveries-table").tBodies[0];
    body.textContent = "";
    $("deliveries-empty").hidden = list.length > 0;
    list.forEach(function (d) {
      var outcome = d.outcome + (d.excerpt && d.outcome !== "delivered" ? ": " + d.excerpt : "");
      body.appendChild(el("tr", { "data-id": String(d.id) },
        el("td", { "data-label": "Time", text: whenMs(d.at_ms) }),
        el("td", { "data-label": "Event", text: d.event_type }),
        el("td", { "data-label": "Session", text: session(d.session_id, d.session_title) }),
        el("td", { "data-label": "Sink", text: d.sink }),
        el("td", { "data-label": "Outcome", text: outcome, class: d.outcome === "delivered" ? "ok" : (d.outcome === "dead" ? "bad" : "warn") }),
        el("td", { "data-label": "HTTP status", class: "num", text: d.status === null || d.status === undefined ? "—" : String(d.status) }),
        el("td", { "data-label": "Attempts", class: "num", text: String(d.attempts) }),
        el("td", { "data-label": "Latency", class: "num", text: latency(d.latency_ms) })));
    });
    var select = $("deliveries-sink");
    var chosen = select.value;
    var sinks = {};
    Array.prototype.forEach.call($("dead-sink").options, function (o) { if (o.value) sinks[o.value] = true; });
    while (select.options.length > 1) select.remove(1);
    Object.keys(sinks).forEach(function (name) { select.appendChild(el("option", { value: name, text: name })); });
    select.value = chosen;
  }

  function renderRecent(sessions) {
    var select = $("preview-recent");
    var chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    sessions.forEach(function (s) {
      var label = (s.title || "(untitled)") + " (" + s.session_id + ", " + s.last_event_type + ")";
      select.appendChild(el("option", { value: s.session_id, text: label }));
    });
    select.value = chosen;
  }

  function renderEvents(list) {
    var body = $("events-table").tBodies[0];
    body.textContent = "";
    $("events-empty").hidden = list.length > 0;
    list.forEach(function (e) {
      var unrouted = !e.routes || e.routes.length === 0;
      var to = unrouted ? "no rule matched" : e.routes.map(function (r) { return r.sink + " (" + r.rule + ")"; }).join(", ");
      body.appendChild(el("tr", { "data-id": String(e.id) },
        el("td", { "data-label": "Detected", text: whenMs(e.detected_at_ms) }),
        el("td", { "data-label": "Event", text: e.event_type }),
        el("td", { "data-label": "Session", text: session(e.session_id, e.session_title) }),
        el("td", { "data-label": "Sent to", text: to, class: unrouted ? "small" : undefined })));
    });
  }

  function deliveriesPath() {
    var q = ["limit=50"];
    [["sink", "deliveries-sink"], ["outcome", "deliveries-outcome"], ["session", "deliveries-session"]].forEach(function (f) {
      var v = $(f[1]).value.trim();
      if (v) q.push(f[0] + "=" + enc(v));
    });
    return "/deliveries?" + q.join("&");
  }

  function deadPath() {
    var sink = $("dead-sink").value;
    return "/dead-letters" + (sink ? "?sink=" + enc(sink) : "");
  }

  var busy = false;
  function refresh() {
    if (busy) return Promise.resolve();
    busy = true;
    return Promise.all([api("GET", "/status"), api("GET", "/sinks"), api("GET", deadPath()), api("GET", "/rules"),
                        api("GET", deliveriesPath()), api("GET", "/events?limit=50"), api("GET", "/sessions")])
      .then(function (r) {
        render("status", r[0], renderStatus);
        render("sinks", r[1].sinks, renderSinks);
        render("dead", r[2].dead_letters, renderDead);
        render("rules", r[3].rules, renderRules);
        render("deliveries", r[4].deliveries, renderDeliveries);
        render("events", r[5].events, renderEvents);
        render("recent", r[6].sessions, renderRecent);
      })
      .catch(function (e) { if (e.message !== "signed out") notice("Could not refresh: " + e.message, true); })
      .then(function () { busy = false; });
  }

  function preview(rule, out) {
    var recent = $("preview-recent").value;
    var text = $("preview-session").value.trim();
    var path = "/rules/" + enc(rule) + "/preview";
    var body;
    if (recent) {
      path += "?session_id=" + enc(recent);
    } else if (text) {
      try { body = JSON.parse(text); } catch (e) { return Promise.reject(new Error("the session is not JSON: " + e.message)); }
    }
    return api("POST", path, body).then(function (p) {
      out.textContent = "";
      if (p.items.length === 0) out.appendChild(el("p", { class: "empty", text: "No sink of this rule is configured." }));
      p.items.forEach(function (item) {
        out.appendChild(el("h4", { text: item.sink + " (" + item.sink_type + "), " + item.event_type }));
        out.appendChild(el("pre", { text: typeof item.payload === "string" ? item.payload : JSON.stringify(item.payload, null, 2) }));
      });
      var of = recent ? " for session " + recent : "";
      return "Preview of " + rule + of + ": " + p.items.length + " payload(s); nothing was sent.";
    });
  }

  function act(button) {
    var a = button.getAttribute("data-action");
    var id = button.getAttribute("data-id");
    var sink = button.getAttribute("data-sink");
    if (a === "resume") return api("POST", "/sinks/" + enc(sink) + "/resume").then(function (r) { return r.message; });
    if (a === "retry") return api("POST", "/dead-letters/" + enc(id) + "/retry").then(function (r) { return r.message; });
    if (a === "purge") return api("DELETE", "/dead-letters/" + enc(id)).then(function (r) { return r.message; });
    if (a === "retry-all") {
      var chosen = $("dead-sink").value;
      var done = chosen
        ? api("POST", "/sinks/" + enc(chosen) + "/retry-dead")
        : api("POST", "/dead-letters/retry", { all: true });
      return done.then(function (r) { return r.message; });
    }
    if (a === "preview") {
      var rule = button.getAttribute("data-rule");
      return preview(rule, $("preview-out-" + rule));
    }
    return Promise.resolve("");
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button[data-action]") : null;
    if (!button || button.disabled) return;
    button.disabled = true;
    act(button)
      .then(function (message) { if (message) notice(message, false); })
      .catch(function (e) { notice(e.message, true); })
      .then(function () {
        button.disabled = false;
        return refresh();
      });
  });

  document.addEventListener("DOMContentLoaded", function () {
    $("dead-sink").addEventListener("change", function () { delete last.dead; refresh(); });
    ["deliveries-sink", "deliveries-outcome", "deliveries-session"].forEach(function (id) {
      $(id).addEventListener("change", function () { delete last.deliveries; refresh(); });
    });
    refresh();
    window.setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  });
})();
