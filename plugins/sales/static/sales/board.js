// Pipeline board: drag a card to another column to change its stage. The stage <select> on
// each card does the same without a mouse (keyboard, phone), so dragging is only a shortcut.
(function () {
  "use strict";
  var dragged = null;

  function moveCardToItsColumn(card) {
    var column = document.querySelector('.board-cards[data-stage-id="' + card.dataset.stageId + '"]');
    if (column && card.parentElement !== column) { column.prepend(card); }
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".deal-card");
    if (!card) { return; }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.dealId);
  });

  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    document.querySelectorAll(".board-cards.drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    dragged = null;
  });

  document.addEventListener("dragover", function (event) {
    var column = event.target.closest && event.target.closest(".board-cards");
    if (!column || !dragged) { return; }
    event.preventDefault();
    column.classList.add("drop-target");
  });

  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest(".board-cards");
    if (column) { column.classList.remove("drop-target"); }
  });

  document.addEventListener("drop", function (event) {
    var column = event.target.closest && event.target.closest(".board-cards");
    if (!column || !dragged) { return; }
    event.preventDefault();
    column.classList.remove("drop-target");
    var stage = column.dataset.stageId;
    if (stage === dragged.dataset.stageId) { return; }
    var select = dragged.querySelector("select[name=stage]");
    if (!select) { return; }
    column.prepend(dragged);
    select.value = stage;
    // The select's form posts with htmx on "change"; the server answers with the card.
    select.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // After the server answered, put the card in the column of the stage it really has
  // (a refused move, e.g. lost without a reason, sends it back).
  document.addEventListener("htmx:afterSwap", function (event) {
    var card = document.getElementById(event.detail.target.id) || event.detail.elt;
    document.querySelectorAll(".deal-card").forEach(function (c) {
      if (!event.detail.target.id || c.id === event.detail.target.id) { moveCardToItsColumn(c); }
    });
    if (card && card.classList && card.classList.contains("deal-card")) { moveCardToItsColumn(card); }
  });
})();
