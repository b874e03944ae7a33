// Labeler workspace: draft autosave with a visible state, time on task, a length counter,
// and keyboard shortcuts. Pages work without it; this only makes them faster and safer.
(function () {
  "use strict";

  var DEBOUNCE_MS = 1000;
  var MAX_RETRY_MS = 30000;

  function csrfToken(form) {
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour12: false });
  }

  function duration(ms) {
    var seconds = Math.floor(ms / 1000);
    var minutes = Math.floor(seconds / 60);
    return minutes + ":" + String(seconds % 60).padStart(2, "0");
  }

  // Time on task: counts only while the page is visible.
  function Timer() {
    this.pending = 0;
    this.since = document.visibilityState === "visible" ? Date.now() : null;
  }
  Timer.prototype.tick = function () {
    if (this.since !== null) {
      var now = Date.now();
      this.pending += now - this.since;
      this.since = now;
    }
  };
  Timer.prototype.pause = function () {
    this.tick();
    this.since = null;
  };
  Timer.prototype.resume = function () {
    if (this.since === null) this.since = Date.now();
  };
  Timer.prototype.take = function () {
    this.tick();
    var taken = Math.round(this.pending);
    this.pending = 0;
    return taken;
  };

  function setupAutosave(form) {
    var url = form.dataset.autosave;
    var limit = parseInt(form.dataset.limit, 10);
    var textarea = form.querySelector("textarea[name=text]");
    var status = document.getElementById("save-status");
    var counter = document.getElementById("char-count");
    var clockEl = document.getElementById("time-on-task");
    var timeInput = form.querySelector("input[name=time_spent_ms]");
    var timer = new Timer();
    var saved = parseInt(clockEl.dataset.base, 10) || 0;
    var lastSaved = textarea.value;
    var debounce = null;
    var retry = null;
    var retryDelay = 2000;
    var inFlight = false;
    var submitting = false;

    function show(text, state) {
      status.textContent = text;
      status.dataset.state = state;
    }

    function count() {
      counter.textContent = textarea.value.length;
      counter.classList.toggle("over", textarea.value.length > limit);
    }

    function body(delta) {
      return JSON.stringify({ text: textarea.value, time_spent_ms: delta });
    }

    function save(keepalive) {
      if (submitting || inFlight) return;
      clearTimeout(debounce);
      clearTimeout(retry);
      var text = textarea.value;
      var delta = timer.take();
      inFlight = true;
      show("Saving…", "saving");
      fetch(url, {
        method: "PUT",
        credentials: "same-origin",
        keepalive: Boolean(keepalive),
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(form) },
        body: body(delta),
      })
        .then(function (response) {
          inFlight = false;
          if (response.ok) {
            saved += delta;
            lastSaved = text;
            retryDelay = 2000;
            show("Saved " + clock(new Date()), "saved");
            if (textarea.value !== lastSaved) schedule();
            return;
          }
          timer.pending += delta;
          if (response.status >= 400 && response.status < 500 && response.status !== 429) {
            return response.json().then(function (data) {
              show("Not saved — " + ((data.error && data.error.message) || "refused"), "error");
            });
          }
          failed();
        })
        .catch(function () {
          inFlight = false;
          timer.pending += delta;
          failed();
        });
    }

    function failed() {
      show("Not saved — retrying", "retrying");
      retry = setTimeout(save, retryDelay);
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
    }

    function schedule() {
      clearTimeout(debounce);
      debounce = setTimeout(save, DEBOUNCE_MS);
    }

    function flush() {
      if (submitting) return;
      timer.tick();
      if (textarea.value !== lastSaved || timer.pending >= 1000) save(true);
    }

    textarea.addEventListener("input", function () {
      count();
      show("Unsaved changes", "dirty");
      schedule();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        timer.pause();
        flush();
      } else {
        timer.resume();
      }
    });
    window.addEventListener("pagehide", flush);
    form.addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.value === "draft") {
        timeInput.value = timer.take();
        return;
      }
      submitting = true;
      clearTimeout(debounce);
      clearTimeout(retry);
      timeInput.value = timer.take();
    });
    setInterval(function () {
      timer.tick();
      clockEl.textContent = duration(saved + timer.pending);
    }, 1000);
    count();
    clockEl.textContent = duration(saved);
  }

  function setupWriting(form) {
    var kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    function update() {
      form.querySelectorAll("[data-for]").forEach(function (el) {
        el.hidden = el.dataset.for.split(" ").indexOf(kind.value) === -1;
      });
    }
    kind.addEventListener("change", update);
    update();
  }

  function setupShortcuts() {
    document.addEventListener("keydown", function (event) {
      var form = document.getElementById("task-form");
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
        event.preventDefault();
        form.requestSubmit(document.getElementById("submit-button"));
      } else if (event.altKey && (event.code === "KeyK" || event.key === "k")) {
        var reason = document.getElementById("skip-reason");
        if (reason) {
          event.preventDefault();
          reason.focus();
        }
      } else if (event.altKey && (event.code === "KeyN" || event.key === "n")) {
        var next = document.querySelector("[data-next]");
        if (next) {
          event.preventDefault();
          next.click();
        }
      }
    });
  }

  var form = document.getElementById("task-form");
  if (form && form.dataset.autosave) setupAutosave(form);
  if (form && form.classList.contains("writing")) setupWriting(form);
  setupShortcuts();
})();
