// Progressive enhancement for /verify/: without JavaScript the page says how
// many seconds to wait; with it, the number counts down and the resend and
// call buttons stay disabled until a new send is allowed.
(function () {
  "use strict";
  var actions = document.querySelector("[data-resend-wait]");
  if (!actions) return;
  var left = parseInt(actions.getAttribute("data-resend-wait"), 10) || 0;
  var notice = actions.querySelector("[data-countdown]");
  var seconds = actions.querySelector("[data-seconds]");
  var buttons = actions.querySelectorAll("[data-after-wait]");

  function render() {
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = left > 0;
    if (seconds) seconds.textContent = String(left);
    if (notice && left <= 0) notice.hidden = true;
  }

  render();
  if (left <= 0) return;
  var timer = window.setInterval(function () {
    left -= 1;
    render();
    if (left <= 0) window.clearInterval(timer);
  }, 1000);
})();
