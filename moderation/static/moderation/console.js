/* The review console: reveal blurred imagery, seek the player, keyboard decisions.
   No inline script, no eval: works under a strict Content-Security-Policy. */
(function () {
  "use strict";
  var root = document.querySelector("[data-mod-console]");
  if (!root) { return; }
  var player = document.getElementById("mod-player");
  var frames = Array.prototype.slice.call(root.querySelectorAll(".mod-frame"));
  var current = -1;

  function reveal(el) {
    var blurred = el && el.closest(".mod-blurred");
    if (blurred) { blurred.classList.remove("mod-blurred"); return true; }
    return false;
  }

  function seek(offset) {
    if (!player || isNaN(offset)) { return; }
    player.pause();
    player.currentTime = offset;
    player.dispatchEvent(new CustomEvent("mod-seek", { detail: offset }));
  }

  function select(index) {
    if (!frames.length) { return; }
    current = Math.max(0, Math.min(frames.length - 1, index));
    frames.forEach(function (f, i) { f.classList.toggle("mod-current", i === current); });
    var frame = frames[current];
    frame.focus();
    seek(parseFloat(frame.getAttribute("data-offset")));
  }

  root.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest("input, label, select, textarea")) { return; }
    if (target.closest(".mod-reveal")) { reveal(target); event.preventDefault(); return; }
    var frame = target.closest(".mod-frame");
    if (frame) {
      reveal(frame.querySelector(".mod-blurred") || frame);
      current = frames.indexOf(frame);
      frames.forEach(function (f) { f.classList.toggle("mod-current", f === frame); });
      seek(parseFloat(frame.getAttribute("data-offset")));
      return;
    }
    var seeker = target.closest(".mod-seek");
    if (seeker) { seek(parseFloat(seeker.getAttribute("data-offset"))); return; }
    // Queue thumbnails: the first click reveals, the next one opens the item.
    if (target.closest(".mod-thumb.mod-blurred")) { reveal(target); event.preventDefault(); }
  });

  var reason = document.getElementById("mod-reason");
  if (reason) {
    reason.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); }  // no accidental approve
      if (event.key === "Escape") { reason.blur(); }
    });
  }

  // The policy reason: digits pick it; a reject that needs one and has none focuses the
  // picker instead of sending (the server refuses it too).
  var reasonCode = document.getElementById("mod-reason-code");
  if (reasonCode) {
    reasonCode.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { reasonCode.blur(); }
    });
  }

  function pickReason(digit) {
    var option = reasonCode && reasonCode.querySelector('option[data-mod-digit="' + digit + '"]');
    if (!option) { return false; }
    reasonCode.value = option.value;
    return true;
  }

  var sent = false;  // one decision per page: a held-down key must not send two

  function press(key) {
    var button = root.querySelector('[data-mod-key="' + key + '"]');
    if (!button || sent) { return false; }
    if (reasonCode && !reasonCode.value && reasonCode.getAttribute("data-mod-required-by") === key) {
      reasonCode.focus();
      return true;
    }
    sent = true;
    button.click();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
    var t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    var key = event.key;
    if (key === "a" || key === "r" || key === "n" || key === "u") {
      if (press(key)) { event.preventDefault(); }
    } else if (/^[1-9]$/.test(key)) {
      if (pickReason(key)) { event.preventDefault(); }
    } else if (key === "j") {
      select(current + 1); event.preventDefault();
    } else if (key === "k") {
      select(current < 0 ? 0 : current - 1); event.preventDefault();
    } else if (key === "v") {
      var blurred = root.querySelectorAll(".mod-blurred");
      if (blurred.length) {
        blurred.forEach(function (el) { el.classList.remove("mod-blurred"); el.setAttribute("data-mod-was-blurred", ""); });
      } else {
        root.querySelectorAll("[data-mod-was-blurred]").forEach(function (el) { el.classList.add("mod-blurred"); });
      }
      event.preventDefault();
    }
  });

  // Keep the claim while the page is open and visible: renew every third of its time.
  // A claim that was lost (it expired while the tab slept, someone else took it) reloads
  // the page, which then says who holds the item.
  var claimUrl = root.getAttribute("data-claim-url");
  if (claimUrl && window.fetch) {
    var seconds = parseFloat(root.getAttribute("data-claim-seconds")) || 600;
    var token = document.querySelector("[name=csrfmiddlewaretoken]");
    window.setInterval(function () {
      if (document.visibilityState !== "visible" || !token) { return; }
      fetch(claimUrl, {method: "POST", credentials: "same-origin",
                       headers: {"X-CSRFToken": token.value}})
        .then(function (answer) { return answer.json(); })
        .then(function (state) { if (!state.held) { window.location.reload(); } })
        .catch(function () {});
    }, Math.max(seconds / 3, 1) * 1000);
  }
}());
