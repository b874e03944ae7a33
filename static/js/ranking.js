// The ranking workspace: drag (SortableJS) or keyboard placement, the submit gate, autosave,
// fold/unfold and side by side. Task text is only ever copied with textContent.
(function () {
  "use strict";
  const form = document.getElementById("ranking");
  if (!form) return;
  const k = Number(form.dataset.k);
  const editable = form.dataset.editable === "1";
  const autosave = editable && form.dataset.autosave === "1";
  const pool = document.getElementById("rk-pool");
  const lists = Array.from(form.querySelectorAll(".rk-list"));
  const columns = lists.filter((list) => list !== pool);
  const outputs = Array.from(form.querySelectorAll(".rk-output"));
  const status = document.getElementById("rk-status");
  const missingNote = document.getElementById("rk-missing");
  const submit = document.getElementById("rk-submit");
  const started = Date.now();
  const elapsedBefore = Number(form.dataset.elapsed) || 0;
  let picked = null;
  let saveTimer = null;

  function groups() {
    return columns
      .map((list) => Array.from(list.children).map((chip) => Number(chip.dataset.id)))
      .filter((group) => group.length > 0);
  }

  function missing() {
    const problems = [];
    const unplaced = Array.from(pool.children).map((chip) => chip.dataset.letter);
    if (unplaced.length) problems.push("place " + unplaced.join(", "));
    outputs.forEach((output) => {
      const id = output.dataset.id;
      const unrated = !form.querySelector('input[name="likert-' + id + '"]:checked');
      const open = Array.from(output.querySelectorAll(".rk-field")).filter(
        (field) => !field.querySelector("input:checked"),
      );
      if (unrated || open.length) {
        problems.push("rate " + output.dataset.letter + (open.length ? " (" + open.length + " questions open)" : ""));
      }
    });
    return problems;
  }

  function spent() {
    return elapsedBefore + (Date.now() - started);
  }

  function showRanks() {
    const rankOf = {};
    columns.forEach((list, index) => {
      Array.from(list.children).forEach((chip) => {
        rankOf[chip.dataset.id] = "· rank " + (index + 1) + (list.children.length > 1 ? ", tied" : "");
      });
    });
    outputs.forEach((output) => {
      output.querySelector(".rk-rank").textContent = rankOf[output.dataset.id] || "· not ranked";
    });
  }

  function refresh() {
    form.elements.groups.value = JSON.stringify(groups());
    showRanks();
    form.elements.time_spent_ms.value = String(spent());
    const problems = missing();
    submit.disabled = !editable || problems.length > 0;
    missingNote.textContent = problems.length
      ? "Before you submit: " + problems.join("; ") + "."
      : "Ready to submit.";
  }

  function save() {
    if (!autosave) return;
    refresh();
    fetch(form.dataset.draftUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then((response) => {
        if (response.ok) {
          status.textContent = "Draft saved " + new Date().toLocaleTimeString();
          return null;
        }
        return response.json().then((body) => {
          status.textContent = "Draft not saved: " + body.error.message;
        });
      })
      .catch(() => {
        status.textContent = "Draft not saved (offline?); your work is still on this page.";
      });
  }

  function changed(delay) {
    refresh();
    if (!autosave) return;
    status.textContent = "Saving…";
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, delay);
  }

  function unpick() {
    if (picked) picked.classList.remove("rk-picked");
    picked = null;
  }

  function pick(chip) {
    unpick();
    picked = chip;
    chip.classList.add("rk-picked");
    status.textContent = "Picked " + chip.dataset.letter + ": press 1–" + k + " to rank it, 0 to return it.";
  }

  function place(rank) {
    const target = rank === 0 ? pool : columns[rank - 1];
    target.appendChild(picked);
    status.textContent = picked.dataset.letter + (rank === 0 ? " returned" : " placed in rank " + rank);
    unpick();
    changed(300);
  }

  lists.forEach((list) => {
    window.Sortable.create(list, {
      group: "ranking",
      animation: 120,
      forceFallback: true,
      fallbackTolerance: 3,
      disabled: !editable,
      onSort: () => changed(300),
    });
  });

  document.addEventListener("keydown", (event) => {
    if (!editable || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.matches("textarea, select, input[type=text]")) return;
    const key = event.key.length === 1 ? event.key.toUpperCase() : event.key;
    const chip = /^[A-Z]$/.test(key) && form.querySelector('.rk-chip[data-letter="' + key + '"]');
    if (chip) {
      pick(chip);
      event.preventDefault();
    } else if (picked && /^[0-9]$/.test(key) && Number(key) <= k) {
      place(Number(key));
      event.preventDefault();
    } else if (key === "Escape") {
      unpick();
    }
  });

  form.addEventListener("change", () => changed(300));
  form.addEventListener("input", (event) => {
    if (event.target.matches("textarea")) changed(1200);
  });
  form.addEventListener("submit", (event) => {
    refresh();
    if (submit.disabled) event.preventDefault();
  });

  outputs.forEach((output) => {
    const text = output.querySelector(".rk-fold");
    const toggle = output.querySelector(".rk-toggle");
    toggle.hidden = text.scrollHeight <= text.clientHeight + 2;
    toggle.addEventListener("click", () => {
      const open = text.classList.toggle("rk-open");
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Collapse" : "Expand";
    });
    output.querySelector(".rk-allno").addEventListener("click", () => {
      output.querySelectorAll('.rk-field input[value="no"]').forEach((input) => {
        input.checked = true;
      });
      changed(300);
    });
  });

  const view = document.getElementById("cmp-view");
  document.getElementById("cmp-show").addEventListener("click", () => {
    const letters = [document.getElementById("cmp-a").value, document.getElementById("cmp-b").value];
    Array.from(view.querySelectorAll(":scope > div")).forEach((column, index) => {
      const source = document.getElementById("out-" + letters[index]);
      column.querySelector("h3").textContent = "Output " + letters[index];
      column.querySelector(".rk-text").textContent = source.querySelector(".rk-text").textContent;
    });
    view.hidden = false;
  });
  document.getElementById("cmp-close").addEventListener("click", () => {
    view.hidden = true;
  });

  const timer = document.getElementById("rk-timer");
  setInterval(() => {
    const seconds = Math.floor(spent() / 1000);
    timer.textContent = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }, 1000);
  refresh();
})();
