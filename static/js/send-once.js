// Progressive enhancement for the forms that send a code (marked
// data-send-once): the first submit disables the button and, where the button
// has data-sending-label, says "Sending…", so a double click sends one request,
// not two. Without JavaScript the server still sends one code: a second
// request for the same number is given the code already on its way.
// A page shown again (the back button, the browser's page cache, a form state
// the browser restores) gets its buttons back.
(function () {
  "use strict";
  var FORMS = "form[data-send-once]";
  var BUTTONS = "button:not([type]), button[type=submit]";

  function release() {
    var forms = document.querySelectorAll(FORMS);
    for (var i = 0; i < forms.length; i++) {
      var form = forms[i];
      form.removeAttribute("data-sending");
      form.removeAttribute("aria-busy");
      var buttons = form.querySelectorAll(BUTTONS);
      for (var j = 0; j < buttons.length; j++) {
        var button = buttons[j];
        if (button.hasAttribute("data-label")) {
          button.textContent = button.getAttribute("data-label");
          button.removeAttribute("data-label");
        }
        // resend-countdown.js owns the buttons it keeps disabled (data-after-wait).
        if (button.hasAttribute("data-sent") || !button.hasAttribute("data-after-wait")) {
          button.disabled = false;
        }
        button.removeAttribute("data-sent");
      }
    }
  }

  function hold(form, submitter) {
    var buttons = form.querySelectorAll(BUTTONS);
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].disabled) continue;
      buttons[i].disabled = true;
      buttons[i].setAttribute("data-sent", "");
    }
    var label = submitter && submitter.getAttribute("data-sending-label");
    if (label) {
      submitter.setAttribute("data-label", submitter.textContent);
      submitter.textContent = label;
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.matches || !form.matches(FORMS)) return;
    if (form.hasAttribute("data-sending")) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sending", "");
    form.setAttribute("aria-busy", "true");
    var submitter = event.submitter || form.querySelector(BUTTONS);
    // After this turn: a control disabled now would be left out of the
    // request the browser is about to build.
    window.setTimeout(function () {
      hold(form, submitter);
    }, 0);
  });

  window.addEventListener("pageshow", release);
})();
