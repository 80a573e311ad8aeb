// The preview page: shows /view.json, reloads the iframe when /events reports a new version,
// and keeps the chosen view (width, scheme, tab, recipient) in the URL hash.
// Everything from the server is put in the page with textContent: nothing is parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const DEFAULTS = { view: "desktop", scheme: "light", tab: "email", who: "sample" };
  const ALLOWED = { view: ["desktop", "phone"], scheme: ["light", "dark"], tab: ["email", "text", "headers"] };
  const state = readHash();
  const shown = { run: null, version: null, choices: "" };
  let lastIssueWho = state.who.startsWith("mail:") ? "sample" : state.who;
  let busy = false;
  let again = false;
  let pendingScroll = null;
  const originalMedia = new WeakMap(); // MediaList or <source> -> media text as the email has it
  const declaredSchemes = new WeakMap(); // iframe document -> the color-scheme it declares

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const result = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS)) {
      const value = params.get(key);
      if (value !== null && (!ALLOWED[key] || ALLOWED[key].includes(value))) result[key] = value;
    }
    return result;
  }

  function setState(change) {
    Object.assign(state, change);
    if (!state.who.startsWith("mail:")) lastIssueWho = state.who;
    history.replaceState(null, "", "#" + new URLSearchParams(state).toString());
    applyControls();
    if ("who" in change) refresh();
    if ("scheme" in change) applyScheme();
  }

  function applyControls() {
    for (const button of document.querySelectorAll("[data-set]")) {
      const [key, value] = button.dataset.set.split("=");
      const on = String(state[key] === value);
      button.setAttribute(button.getAttribute("role") === "tab" ? "aria-selected" : "aria-pressed", on);
    }
    for (const tab of ALLOWED.tab) $("panel-" + tab).hidden = state.tab !== tab;
    $("frame-box").className = `frame-box ${state.view} ${state.scheme}`;
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const response = await fetch("/view.json?who=" + encodeURIComponent(state.who), { cache: "no-store" });
        show(await response.json());
      } while (again);
    } catch (error) {
      setStatus(false);
    } finally {
      busy = false;
    }
  }

  function show(data) {
    shown.run = data.run;
    shown.version = data.version;
    $("issue").textContent = data.issue;
    document.title = "Voorbeeld " + data.issue;

    $("error").hidden = !data.error;
    $("error-text").textContent = data.error || "";
    $("error-stale").hidden = !data.stale;

    showChoices(data.subscribers);
    $("subscribers-note").hidden = !data.subscribersNote;
    $("subscribers-note").textContent = data.subscribersNote || "";
    $("viewing-mail").hidden = !state.who.startsWith("mail:");
    $("message-error").hidden = !data.messageError;
    $("message-error").textContent = data.messageError || "";

    showCheck(data.check);
    const message = data.message;
    $("message").hidden = !message;
    if (message) showMessage(message);
    showOutbox(data.outbox);
    $("updated").textContent = `Versie ${data.version}, bijgewerkt om ${new Date().toLocaleTimeString("nl-NL")}`;
  }

  const LEVELS = { problem: "Probleem", warning: "Waarschuwing", info: "Ter info" };

  function showCheck(check) {
    // `nieuwsbrief check` on the latest version that rendered: each finding at its file:line.
    $("check").hidden = !check;
    if (!check) return;
    $("check").classList.toggle("ok", check.ok);
    $("check-verdict").textContent = check.verdict;
    $("check-findings").replaceChildren(...check.findings.map((f) => {
      const item = document.createElement("li");
      item.className = f.level;
      const level = document.createElement("strong");
      level.textContent = LEVELS[f.level] + ": ";
      const where = document.createElement("code");
      where.textContent = f.where || "(geen bestand)";
      const detail = f.detail ? `; ${f.detail}` : "";
      item.append(level, where, document.createTextNode(` ${f.message} [${f.code}${detail}]`));
      return item;
    }));
  }

  function showChoices(choices) {
    const select = $("who");
    const key = JSON.stringify(choices);
    if (key !== shown.choices) {
      shown.choices = key;
      select.replaceChildren(...choices.map((c) => new Option(c.label, c.key)));
    }
    const known = choices.some((c) => c.key === state.who);
    let placeholder = select.querySelector("option[data-placeholder]");
    if (!known && !placeholder) {
      placeholder = new Option(state.who.startsWith("mail:") ? "(bericht uit de outbox)" : "(niet in de lijst)", "");
      placeholder.dataset.placeholder = "1";
      placeholder.disabled = true;
      select.prepend(placeholder);
    } else if (known && placeholder) {
      placeholder.remove();
    }
    select.value = known ? state.who : "";
    select.disabled = choices.length < 2 && known;
  }

  function showMessage(m) {
    $("inbox-from").textContent = m.fromName;
    $("inbox-from").title = m.fromAddress;
    $("inbox-subject").textContent = m.subject;
    $("inbox-preheader").textContent = m.snippet;
    $("inbox-date").textContent = m.to ? "aan " + m.to : "";
    $("inbox-date").title = m.date;
    const size = $("size");
    size.textContent = m.sizeWarning
      ? `HTML-deel: ${m.sizeKb} KB zoals verzonden. Let op: Gmail knipt berichten boven ongeveer 102 KB af.`
      : `HTML-deel: ${m.sizeKb} KB zoals verzonden (Gmail knipt berichten boven ongeveer 102 KB af).`;
    size.classList.toggle("warn", m.sizeWarning);
    $("notes").replaceChildren(...m.notes.map((note) => {
      const item = document.createElement("li");
      item.textContent = note;
      return item;
    }));
    $("text-part").textContent = m.text;
    $("headers").textContent = m.headers;
    $("eml-link").href = m.emlUrl;
    loadFrame(m.htmlUrl);
  }

  function showOutbox(outbox) {
    $("outbox").hidden = !outbox;
    if (!outbox) return;
    const count = outbox.messages.length + outbox.more;
    $("outbox-info").textContent = !outbox.exists
      ? `Nog geen outbox in ${outbox.dir} (send schrijft daarheen als er geen SMTP-server is ingesteld).`
      : `${count} bericht(en) in ${outbox.dir}` + (outbox.more ? `; de nieuwste ${outbox.messages.length} staan hier.` : ".");
    $("outbox-table").hidden = outbox.messages.length === 0;
    $("outbox-rows").replaceChildren(...outbox.messages.map((message) => {
      const row = document.createElement("tr");
      row.classList.toggle("current", message.key === state.who);
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = message.to || "(geen ontvanger)";
      open.addEventListener("click", () => setState({ who: message.key }));
      const cells = [open, message.subject, message.date].map((content) => {
        const cell = document.createElement("td");
        cell.append(content);
        return cell;
      });
      row.append(...cells);
      return row;
    }));
  }

  function loadFrame(url) {
    const frame = $("email");
    if (frame.dataset.src === url) return;
    pendingScroll = null;
    try {
      if (frame.dataset.who === state.who && frame.contentWindow) {
        pendingScroll = [frame.contentWindow.scrollX, frame.contentWindow.scrollY];
      }
    } catch (error) {
      pendingScroll = null;
    }
    frame.dataset.src = url;
    frame.dataset.who = state.who;
    try {
      frame.contentWindow.location.replace(url); // no history entry per reload
    } catch (error) {
      frame.src = url;
    }
  }

  function frameLoaded() {
    const frame = $("email");
    applyScheme();
    let doc;
    try {
      doc = frame.contentDocument;
    } catch (error) {
      return;
    }
    if (!doc) return;
    // Links open in a new tab: the page's policy does not let the frame leave this server.
    doc.addEventListener("click", (event) => {
      const link = event.target.closest ? event.target.closest("a[href]") : null;
      if (!link || link.getAttribute("href").startsWith("#")) return;
      event.preventDefault();
      window.open(link.href, "_blank", "noopener,noreferrer");
    });
    if (pendingScroll) frame.contentWindow.scrollTo(pendingScroll[0], pendingScroll[1]);
    pendingScroll = null;
    document.body.dataset.frameVersion = String(shown.version);
  }

  // Dark mode: make the email's own `prefers-color-scheme` media queries answer for the chosen
  // scheme. Where the wanted scheme differs from the browser's, "dark" and "light" swap places
  // in each query, so the email's real rules decide; nothing else in the email changes.
  function applyScheme() {
    let doc;
    try {
      doc = $("email").contentDocument;
    } catch (error) {
      return;
    }
    if (!doc || !doc.documentElement) return;
    const browser = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    const flip = state.scheme !== browser;
    for (const sheet of doc.styleSheets) {
      flipList(sheet.media, flip);
      let rules;
      try {
        rules = sheet.cssRules;
      } catch (error) {
        continue;
      }
      flipRules(rules, flip);
    }
    for (const source of doc.querySelectorAll("source[media]")) {
      if (!originalMedia.has(source)) originalMedia.set(source, source.getAttribute("media"));
      source.setAttribute("media", flipped(originalMedia.get(source), flip));
    }
    // The canvas and form controls follow the preference too, where the email allows it.
    const root = doc.documentElement;
    if (!declaredSchemes.has(doc)) declaredSchemes.set(doc, declaredScheme(doc));
    if (declaredSchemes.get(doc).split(/\s+/).includes(state.scheme)) {
      root.style.setProperty("color-scheme", state.scheme, "important");
    } else {
      root.style.removeProperty("color-scheme");
    }
  }

  function declaredScheme(doc) {
    const computed = getComputedStyle(doc.documentElement).colorScheme || "normal";
    if (computed !== "normal") return computed;
    const meta = doc.querySelector('meta[name="color-scheme"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function flipRules(rules, flip) {
    for (const rule of rules) {
      if (rule.media) flipList(rule.media, flip);
      if (rule.cssRules) flipRules(rule.cssRules, flip);
    }
  }

  function flipList(list, flip) {
    if (!list) return;
    if (!originalMedia.has(list)) {
      if (!/prefers-color-scheme/i.test(list.mediaText)) return;
      originalMedia.set(list, list.mediaText);
    }
    const wanted = flipped(originalMedia.get(list), flip);
    if (list.mediaText !== wanted) list.mediaText = wanted;
  }

  function flipped(text, flip) {
    if (!flip) return text;
    return text.replace(/(prefers-color-scheme\s*:\s*)(dark|light)/gi,
      (match, feature, value) => feature + (value.toLowerCase() === "dark" ? "light" : "dark"));
  }

  function setStatus(live) {
    const status = $("status");
    status.className = "status " + (live ? "live" : "offline");
    status.textContent = live ? "live: ververst bij elke wijziging" : "geen verbinding met nieuwsbrief preview";
  }

  function listen() {
    const events = new EventSource("/events");
    events.addEventListener("version", (event) => {
      setStatus(true);
      const data = JSON.parse(event.data);
      if (data.run !== shown.run || data.version !== shown.version) refresh();
    });
    events.addEventListener("open", () => setStatus(true));
    events.addEventListener("error", () => setStatus(false));
  }

  for (const button of document.querySelectorAll("[data-set]")) {
    button.addEventListener("click", () => {
      const [key, value] = button.dataset.set.split("=");
      setState({ [key]: value });
    });
  }
  $("who").addEventListener("change", (event) => {
    if (event.target.value) setState({ who: event.target.value });
  });
  $("back").addEventListener("click", () => setState({ who: lastIssueWho }));
  $("email").addEventListener("load", frameLoaded);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyScheme);
  window.addEventListener("hashchange", () => {
    const before = state.who;
    Object.assign(state, readHash());
    applyControls();
    applyScheme();
    if (state.who !== before) refresh();
  });

  applyControls();
  refresh();
  listen();
})();
