// Refreshes the inbox table every 20 seconds without reloading the page (and so without losing
// the reader's place); pauses while the tab is hidden or the reader is working in the table.
(function () {
  const box = document.getElementById("inbox-table");
  if (!box) return;
  async function refresh() {
    if (document.hidden || box.contains(document.activeElement)) return;
    try {
      const response = await fetch(box.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) box.innerHTML = await response.text();
    } catch (error) { /* offline for a moment: try again next time */ }
  }
  setInterval(refresh, 20000);
})();
