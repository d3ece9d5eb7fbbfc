// The Brand section's live preview (templates/web/editor/_newsletter_brand.html): as a field
// changes, ask the form's data-preview address for the digest in the typed brand and show it
// at desktop and phone width, in dark mode and as plain text, or the errors at their fields
// (the preview then keeps the saved brand). Without this script the page shows the same on
// each save.
(function () {
  "use strict";
  const form = document.getElementById("brand-form");
  if (!form || !window.fetch) return;
  const names = ["logo_url", "logo_width", "accent_color", "link_color", "font", "footer_text", "reply_to", "language"];
  const frames = {html: ["brand-desktop", "brand-phone"], dark_html: ["brand-dark"]};
  const text = document.getElementById("brand-text");
  const note = document.getElementById("brand-preview-note");
  let timer = 0;
  let asked = 0;

  function showError(name, message) {
    const input = form.elements.namedItem(name);
    const line = document.getElementById(name + "-error");
    if (!input || !line) return;
    line.textContent = message || "";
    line.hidden = !message;
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && id !== line.id);
    if (message) {
      input.setAttribute("aria-invalid", "true");
      described.push(line.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
  }

  async function refresh() {
    const ask = ++asked;
    const query = new URLSearchParams();
    for (const name of names) query.set(name, form.elements.namedItem(name).value);
    let answer;
    try {
      const response = await fetch(form.dataset.preview + "?" + query, {headers: {Accept: "application/json"}});
      if (!response.ok) return;
      answer = await response.json();
    } catch (err) {
      return; // offline or signed out: saving still checks everything
    }
    if (ask !== asked) return; // a later keystroke's answer is on its way
    for (const [key, ids] of Object.entries(frames)) {
      for (const id of ids) document.getElementById(id).srcdoc = answer[key];
    }
    text.textContent = answer.text;
    for (const name of names) showError(name, answer.errors[name]);
    const bad = Object.keys(answer.errors).length > 0;
    note.textContent = bad ? "The fields marked above are not valid yet: the preview shows the saved brand."
                           : "The digest as a reader gets it, with this brand.";
    document.body.dataset.brandPreview = String(ask); // for the browser test: an answer was drawn
  }

  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  form.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 50);
  });
})();
