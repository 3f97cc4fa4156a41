// The kanban (templates/opportunities/kanban.html, opportunities/views_pipeline.py).
//
// A card dragged to another column (SortableJS, static/vendor/sortablejs), or sent there
// with its "Move to" form, is posted to its advance URL (path "drag" or "form") with the
// HX-Request header, which answers with a fragment: on success the moved card (it takes
// its place in the new column and the two columns' figures follow), on a refusal (409)
// the missing required actions, each linked, shown on the card, which goes back where it
// was. Without this script the form posts as a plain form, and the answer is a page.
(function () {
  "use strict";

  // The owner picker shows the chosen owner's kanban (its button does without JS).
  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });

  var board = document.getElementById("kanban");
  if (!board) return;

  var numbers = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    maximumFractionDigits: 0,
  });

  function money(value) {
    return (board.dataset.currency || "") + numbers.format(Math.round(value));
  }

  function number(value) {
    var parsed = parseFloat(value);
    return isNaN(parsed) ? 0 : parsed;
  }

  function cardsOf(code) {
    return board.querySelector('.kanban-cards[data-stage="' + code + '"]');
  }

  function csrfToken(card) {
    var input = card.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (e) {
      return "";
    }
  }

  // The page's weighted total, as `card` leaves (-1) or joins (+1) a column (its
  // probability is the stage's: the sum changes with a move).
  function weigh(card, sign) {
    var total = document.querySelector("[data-testid=total-weighted]");
    if (!total || card.dataset.amount === undefined) return;
    var value =
      number(total.dataset.weighted) +
      (sign * number(card.dataset.amount) * number(card.dataset.probability)) / 100;
    total.dataset.weighted = value;
    total.textContent = money(value);
  }

  // A column's count, sums and valid count, as `card` leaves (-1) or joins (+1) it.
  function count(list, card, sign) {
    weigh(card, sign);
    var column = list.closest(".kanban-column");
    var badge = column.querySelector("[data-testid=column-count]");
    var total = number(badge.dataset.count) + sign;
    badge.dataset.count = total;
    badge.textContent = total;
    var figures = column.querySelector(".kanban-figures");
    if (card.dataset.valid === "1") {
      var valid = number(figures.dataset.valid) + sign;
      figures.dataset.valid = valid;
      column.querySelector("[data-valid-count]").textContent = valid;
    }
    if (figures.dataset.amount !== undefined && card.dataset.amount !== undefined) {
      var amount = number(card.dataset.amount);
      var sum = number(figures.dataset.amount) + sign * amount;
      var weighted =
        number(figures.dataset.weighted) + (sign * amount * number(card.dataset.probability)) / 100;
      figures.dataset.amount = sum;
      figures.dataset.weighted = weighted;
      column.querySelector("[data-testid=column-amount]").textContent = money(sum);
      column.querySelector("[data-testid=column-weighted]").textContent = money(weighted);
    }
  }

  function feedback(card, html) {
    var box = card.querySelector(".kanban-feedback");
    if (!box) return;
    box.innerHTML = html || "";
    card.classList.toggle("kanban-refused", Boolean(html));
    if (!html) return;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close kanban-feedback-close";
    close.setAttribute("aria-label", board.dataset.dismissText || "Close");
    close.setAttribute("data-testid", "feedback-close");
    close.addEventListener("click", function () { feedback(card, ""); });
    box.append(close);
  }

  function message(text) {
    var alert = document.createElement("div");
    alert.className = "alert alert-danger py-2 px-3 mb-0 small";
    alert.setAttribute("role", "alert");
    alert.textContent = text;
    return alert.outerHTML;
  }

  // The card from the answer's HTML, or null (e.g. the log-in page after a lost session).
  function cardFrom(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content.querySelector(".kanban-card");
  }

  function send(card, code, how) {
    var body = new URLSearchParams();
    body.set("stage", code);
    body.set("path", how);
    return fetch(card.dataset.advanceUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "HX-Request": "true",
        "HX-Target": card.id, // card-<uuid>: the answer is the moved card
        "X-CSRFToken": csrfToken(card),
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: body.toString(),
    }).then(function (response) {
      return response.text().then(function (html) {
        return { ok: response.ok, status: response.status, html: html };
      });
    });
  }

  // Move `card` from the list `from` (where it was at `oldIndex`) to the list `to`; a
  // dragged card is in `to` already, a card sent by its form still in `from`.
  function move(card, from, to, oldIndex, how) {
    feedback(card, "");
    card.classList.add("kanban-busy");
    card.setAttribute("aria-busy", "true");

    function putBack() {
      if (card.parentNode !== from) from.insertBefore(card, from.children[oldIndex] || null);
    }

    send(card, to.dataset.stage, how)
      .then(function (answer) {
        var fresh = answer.ok ? cardFrom(answer.html) : null;
        if (fresh) {
          count(from, card, -1);
          if (card.parentNode === to) card.replaceWith(fresh);
          else {
            to.insertBefore(fresh, to.firstChild);
            card.remove();
          }
          count(to, fresh, +1);
          if (how === "form") {
            var link = fresh.querySelector("a");
            if (link) link.focus();
          }
          return;
        }
        putBack();
        feedback(card, answer.ok ? message(board.dataset.errorText) : answer.html);
      })
      .catch(function () {
        putBack();
        feedback(card, message(board.dataset.errorText));
      })
      .finally(function () {
        card.classList.remove("kanban-busy");
        card.removeAttribute("aria-busy");
      });
  }

  // "Move to": in place (the form is the keyboard's way, and works without this script).
  board.addEventListener("submit", function (event) {
    var form = event.target.closest("form.kanban-move");
    if (!form) return;
    var card = form.closest(".kanban-card");
    var from = card.parentNode;
    var to = cardsOf(form.elements.stage.value);
    if (!to) return; // not on the board: the plain form answers
    event.preventDefault();
    if (to === from) return;
    move(card, from, to, Array.prototype.indexOf.call(from.children, card), "form");
  });

  if (typeof Sortable === "undefined") return;
  board.querySelectorAll(".kanban-cards").forEach(function (list) {
    Sortable.create(list, {
      group: "kanban",
      sort: false, // a column's order is by last activity
      draggable: ".kanban-card[data-movable]",
      // The card's links and controls keep working: they do not start a drag.
      filter: "a, select, option, button, input, label, .kanban-feedback",
      preventOnFilter: false,
      delay: 150,
      delayOnTouchOnly: true,
      ghostClass: "kanban-ghost",
      chosenClass: "kanban-chosen",
      onEnd: function (event) {
        if (event.from === event.to) return;
        move(event.item, event.from, event.to, event.oldIndex, "drag");
      },
    });
  });
})();
