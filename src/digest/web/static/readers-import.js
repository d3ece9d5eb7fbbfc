// The readers' CSV import with a progress bar (templates/web/editor/readers_import.html).
// Without this script the form posts plainly and the page that comes back is the report;
// with it, the form posts with stream=1 and the answer arrives one JSON object a line as the
// import goes: {read, total} after each chunk of rows, then {done, ..., html} (the report)
// or {error}. See digest/web/pages/editor/reader_import.py.
(function () {
  "use strict";
  const form = document.getElementById("import-form");
  if (!form || !window.fetch || !window.ReadableStream || !window.TextDecoder) return;
  const section = document.getElementById("import-progress-section");
  const bar = document.getElementById("import-progress");
  const status = document.getElementById("import-status");
  const out = document.getElementById("import-report");
  const button = document.getElementById("import-button");
  const number = new Intl.NumberFormat();

  function say(text) { status.textContent = text; }

  function showError(message) {
    bar.removeAttribute("value");
    section.hidden = true;
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    out.replaceChildren(p);
  }

  function handle(event) {
    if (event.error) {
      showError(event.error);
    } else if (event.done) {
      bar.max = Math.max(event.rows, 1);
      bar.value = bar.max;
      say(`Done: ${number.format(event.imported)} imported, ${number.format(event.rows)} rows read.`);
      out.innerHTML = event.html;  // rendered and escaped by the server's template
      const heading = out.querySelector("h2");
      if (heading) heading.focus();
    } else if (typeof event.read === "number") {
      bar.max = Math.max(event.total, 1);
      bar.value = Math.min(event.read, bar.max);
      say(`${number.format(event.read)} of ${number.format(event.total)} rows read…`);
    }
  }

  async function refusal(response) {
    // The server's error page, in the editor's frame: its message is in p.error.
    const text = await response.text();
    const page = new DOMParser().parseFromString(text, "text/html");
    const found = page.querySelector("p.error");
    return found ? found.textContent.trim() : `The import was refused (${response.status}).`;
  }

  form.addEventListener("submit", async function (submitted) {
    submitted.preventDefault();
    const body = new FormData(form);
    body.append("stream", "1");
    out.replaceChildren();
    section.hidden = false;
    bar.removeAttribute("value");  // indeterminate while the file goes up and is checked
    say("Uploading and checking the file…");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {method: "POST", body: body, credentials: "same-origin",
                                                 headers: {"Accept": "application/x-ndjson"}});
      const type = response.headers.get("content-type") || "";
      if (!response.ok || !type.startsWith("application/x-ndjson")) {
        showError(await refusal(response));
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        buffer += decoder.decode(value || new Uint8Array(), {stream: !done});
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end).trim();
          buffer = buffer.slice(end + 1);
          if (line) handle(JSON.parse(line));
        }
        if (done) break;
      }
    } catch (failure) {
      showError("The connection was lost. The import may have finished: look for the readers before trying again.");
    } finally {
      button.disabled = false;
    }
  });
})();
