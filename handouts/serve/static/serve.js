// The counselor's page, a little quicker with JavaScript; every part of it also works without.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.make");
  if (form) {
    // A new language re-offers its sections through the same form: what is typed travels along.
    const language = form.querySelector("#language");
    const show = form.querySelector("#show-language");
    if (language && show) {
      show.hidden = true;
      language.addEventListener("change", () => form.requestSubmit(show));
    }
    // A kit ticks its sections here and now, without a round trip.
    for (const kit of form.querySelectorAll("button.kit")) {
      kit.addEventListener("click", (event) => {
        event.preventDefault();
        const wanted = new Set(kit.dataset.sections.split(" "));
        for (const box of form.querySelectorAll('input[name="sections"]')) {
          box.checked = wanted.has(box.value);
        }
        // The same words the server says without JavaScript: which of the kit's sections are not offered here.
        const missing = [];
        for (const id of wanted) {
          const why = document.getElementById("why-" + id);
          const label = document.querySelector('label[for="section-' + id + '"]');
          if (why && label) {
            const reason = why.textContent.replace(/\.$/, "");
            missing.push(label.textContent + " (" + reason.charAt(0).toLowerCase() + reason.slice(1) + ")");
          }
        }
        const note = document.getElementById("kit-note");
        if (note) {
          note.textContent = missing.length ? "Not ticked, as it is not offered here: " + missing.join("; ") + "." : "";
        }
      });
    }
    // The note's hint follows the chosen layout.
    const hint = form.querySelector("#note-hint");
    for (const radio of form.querySelectorAll('input[name="layout"]')) {
      radio.addEventListener("change", () => {
        if (hint && radio.checked) hint.textContent = radio.dataset.noteHint;
      });
    }
  }
  const note = document.querySelector("#chart-note");
  const actions = document.querySelector(".note-actions");
  if (note && actions) {
    const status = document.querySelector("#note-status");
    actions.hidden = false;
    document.querySelector("#copy-note").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(note.value);
      } catch {
        note.select();
        document.execCommand("copy");
      }
      status.textContent = "Copied.";
    });
    document.querySelector("#print-note").addEventListener("click", () => {
      // Only the note prints: the page's print style hides the rest while this class is on.
      document.documentElement.classList.add("print-note");
      window.print();
    });
    window.addEventListener("afterprint", () => document.documentElement.classList.remove("print-note"));
  }
});
