/* Herald signup widget: makes every form[data-herald] post JSON. Served with
   __HERALD_T__ and __HERALD_API__ replaced. Without fetch, or on a network or
   CORS error, the form is submitted the ordinary way. */
(() => {
"use strict";
const T = "__HERALD_T__", API = "__HERALD_API__";
const real = (s) => s.indexOf("__HERALD") !== 0;
const el = (tag, cls) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
};

const init = (f, i) => {
  if (f.hasAttribute("data-herald-on")) return;
  f.setAttribute("data-herald-on", "");
  if (real(T)) {
    let t = f.querySelector('input[name="t"]');
    if (!t) {
      t = el("input");
      t.type = "hidden";
      t.name = "t";
      f.appendChild(t);
    }
    t.value = T;
  }
  const url = f.getAttribute("data-api") || (real(API) ? API : "");
  if (!url || !window.fetch) return;

  let st = f.querySelector(".herald-status");
  if (!st) {
    st = el("p", "herald-status");
    st.setAttribute("role", "status");
    st.setAttribute("aria-live", "polite");
    f.appendChild(st);
  }
  const btn = f.querySelector('[type="submit"]') || el("button");
  const all = (sel) => Array.from(f.querySelectorAll(sel));
  const named = (n) => all('[name="' + n + '"]');
  const val = (n) => {
    const e = f.elements[n];
    return e && typeof e.value === "string" ? e.value : "";
  };
  const say = (msg, kind) => {
    st.textContent = msg || "";
    st.className = "herald-status" + (msg ? " herald-status-" + kind : "");
  };
  // Shows msg next to the field called name; false if there is none.
  const mark = (name, msg) => {
    const ctl = named(name);
    if (!ctl.length || ctl[0].type === "hidden" || name === "website") return false;
    let s = f.querySelector('[data-herald-error="' + name + '"]');
    if (!s) {
      s = el("p", "herald-error");
      s.setAttribute("data-herald-error", name);
      const c = ctl[ctl.length - 1], box = c.closest("fieldset") || c.closest("label") || c;
      if (box.tagName === "FIELDSET") box.appendChild(s);
      else box.after(s);
    }
    s.id = "herald-" + i + "-" + name + "-error";
    s.textContent = msg;
    s.hidden = false;
    ctl.forEach((c) => {
      c.setAttribute("aria-invalid", "true");
      c.setAttribute("aria-describedby", s.id);
    });
    return true;
  };
  let busy = false;

  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (busy) return;
    busy = btn.disabled = true;
    all("[aria-invalid]").forEach((e) => {
      e.removeAttribute("aria-invalid");
      e.removeAttribute("aria-describedby");
    });
    all("[data-herald-error]").forEach((e) => {
      e.hidden = true;
      e.textContent = "";
    });
    all(".herald-alert").forEach((e) => e.remove());
    say("");
    const c = named("consent")[0];
    const body = {
      email: val("email").trim(),
      sections: named("sections").filter((e) => e.checked || e.type === "hidden").map((e) => e.value),
      frequency: val("frequency") || "daily",
      consent: !!c && (c.type === "hidden" ? c.value === "yes" : c.checked),
      source: val("source"),
      t: val("t"),
      website: val("website")
    };
    let r;
    try {
      r = await fetch(url, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body)
      });
    } catch (e) {
      return f.submit(); // network error or CORS refusal: post the plain form
    }
    const d = await r.json().catch(() => ({}));
    busy = btn.disabled = false;
    if (r.ok) {
      // Keep the heading and the status; hide the rest.
      Array.from(f.children).forEach((e) => {
        if (!e.contains(st) && !e.matches("h1,h2,h3,h4,h5,h6,.herald-heading")) e.hidden = true;
      });
      btn.hidden = true;
      say(d.message || "Check your inbox: we've sent you a link to confirm your subscription.", "ok");
      st.tabIndex = -1;
      return st.focus();
    }
    if (r.status === 429) {
      say("Too many attempts — please try again in a minute.", "error");
      return btn.focus();
    }
    const rest = [d.error], fields = d.fields || {};
    Object.keys(fields).forEach((k) => {
      if (!mark(k, fields[k])) rest.push(fields[k]);
    });
    const first = f.querySelector('[aria-invalid="true"]');
    say(rest.filter(Boolean).join(" ") || (first ? "" : "Something went wrong. Please try again."), "error");
    (first || btn).focus();
  });
};

const run = () => document.querySelectorAll("form[data-herald]").forEach(init);
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
else run();
})();
