/* The job list and job page (admin): the first click on a blurred thumbnail lifts the
   wellness blur instead of following the link; players start muted under the preference.
   No inline script: works under a strict Content-Security-Policy. */
(function () {
  "use strict";
  document.querySelectorAll("[data-mod-evidence-page]").forEach(function (root) {
    root.addEventListener("click", function (event) {
      var blurred = event.target.closest(".mod-blurred");
      if (blurred && root.contains(blurred)) {
        blurred.classList.remove("mod-blurred");
        event.preventDefault();
      }
    });
  });
  document.querySelectorAll("[data-mod-mute] audio, [data-mod-mute] video, audio[data-mod-mute], video[data-mod-mute]")
    .forEach(function (player) { player.muted = true; });
}());
