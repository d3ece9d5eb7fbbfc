// The newsletter form's live preview (templates/web/editor/_newsletter_fields.html): as the
// schedule, zone, subject or name change, ask /editor/newsletters/schedule what they mean
// and show the schedule in words, the next five sends and a sample subject, or the errors
// at their fields. Without this script the page shows the same on each submit.
(function () {
  "use strict";
  const form = document.getElementById("newsletter-form");
  if (!form || !window.fetch) return;
  const field = (name) => form.elements.namedItem(name);
  const words = document.getElementById("schedule-words");
  const list = document.getElementById("next-sends");
  const label = document.getElementById("next-sends-label");
  const example = document.getElementById("subject-example");
  const exampleWrap = document.getElementById("subject-example-wrap");
  const watched = ["cron", "timezone", "subject_template", "name"];
  let timer = 0;
  let asked = 0;

  function showError(name, message) {
    const input = field(name);
    const note = document.getElementById(name + "-error");
    if (!input || !note) return;
    note.textContent = message || "";
    note.hidden = !message;
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => id && id !== note.id);
    if (message) {
      input.setAttribute("aria-invalid", "true");
      described.push(note.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
  }

  async function refresh() {
    const ask = ++asked;
    const query = new URLSearchParams();
    for (const name of watched) query.set(name, field(name) ? field(name).value : "");
    let answer;
    try {
      const response = await fetch("/editor/newsletters/schedule?" + query, {headers: {Accept: "application/json"}});
      if (!response.ok) return;
      answer = await response.json();
    } catch (err) {
      return; // offline or signed out: the form still checks everything on submit
    }
    if (ask !== asked) return; // a later keystroke's answer is on its way
    words.textContent = answer.words;
    list.replaceChildren(...answer.next.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    label.hidden = answer.next.length === 0;
    example.textContent = answer.subject;
    exampleWrap.hidden = !answer.subject;
    for (const name of ["cron", "timezone", "subject_template"]) showError(name, answer.errors[name]);
  }

  form.addEventListener("input", (event) => {
    if (!watched.includes(event.target.name)) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();
