// Mini Market dashboard: progressive enhancements only. Every page works without this file.
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Inicio: live numbers over server-sent events.
  function liveKpis() {
    var box = document.querySelector("[data-live-kpis]");
    if (!box || !window.EventSource) return;
    var status = document.querySelector("[data-live-status]");
    var source = new EventSource("/eventos/inicio?desde=" + encodeURIComponent(box.getAttribute("data-marker") || ""));
    source.addEventListener("kpis", function (event) {
      var data = JSON.parse(event.data);
      Object.keys(data.values).forEach(function (name) {
        box.querySelectorAll('[data-kpi="' + name + '"]').forEach(function (el) {
          if (el.textContent !== data.values[name]) {
            el.textContent = data.values[name];
            var card = el.closest(".kpi");
            if (card) { card.classList.add("flash"); setTimeout(function () { card.classList.remove("flash"); }, 2000); }
          }
        });
      });
      box.setAttribute("data-marker", String(data.marker));
      if (status) status.textContent = "Actualizado " + new Date().toLocaleTimeString("es-AR");
    });
  }

  // Search as you type; a scanner (digits then Enter) submits the form, and the server opens the product.
  function suggest() {
    document.querySelectorAll("[data-suggest]").forEach(function (input) {
      var list = document.getElementById(input.getAttribute("data-suggest"));
      var pick = input.getAttribute("data-pick");  // fill a field instead of opening the product
      var timer = null, seq = 0;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        var q = input.value.trim();
        if (q.length < 2 || /^\d{6,}$/.test(q)) { list.textContent = ""; return; }
        timer = setTimeout(function () {
          var mine = ++seq;
          fetch("/inventario/sugerencias?q=" + encodeURIComponent(q), { credentials: "same-origin" })
            .then(function (r) { return r.ok ? r.json() : []; })
            .then(function (items) {
              if (mine !== seq) return;
              list.textContent = "";
              items.forEach(function (item) {
                var li = document.createElement("li");
                var a = document.createElement("a");
                a.href = "/inventario/" + encodeURIComponent(item.sku);
                a.textContent = item.name + " — " + item.sku + " (stock " + item.stock + ")";
                if (pick) {
                  a.addEventListener("click", function (e) {
                    e.preventDefault(); input.value = item.sku; list.textContent = "";
                    var next = document.getElementById(pick); if (next) next.focus();
                  });
                }
                li.appendChild(a); list.appendChild(li);
              });
            });
        }, 180);
      });
    });
  }

  // One tap records once: the form carries its Idempotency-Key; the button also stops a second tap.
  function oneSubmit() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; b.textContent = "Enviando…"; });
      });
    });
  }

  // Precios: "recalcular desde el costo" takes no percentage; the field steps aside while it is chosen.
  function percentOnlyWhenUsed() {
    var percent = document.querySelector("[data-percent]");
    if (!percent) return;
    var radios = document.querySelectorAll('input[name="operacion"]');
    function update() {
      var chosen = document.querySelector('input[name="operacion"]:checked');
      percent.disabled = !!chosen && chosen.value === "recompute";
    }
    radios.forEach(function (r) { r.addEventListener("change", update); });
    update();
  }

  // On a phone the sections fold behind "Menú" (open without this script, so every page stays reachable).
  function foldMenu() {
    var menu = document.querySelector("[data-menu]");
    if (menu && window.matchMedia && window.matchMedia("(max-width: 719px)").matches) menu.removeAttribute("open");
  }

  document.addEventListener("DOMContentLoaded", function () {
    foldMenu();
    liveKpis(); suggest(); oneSubmit(); percentOnlyWhenUsed();
    window.minimarket = { csrfToken: csrfToken };
  });
})();
