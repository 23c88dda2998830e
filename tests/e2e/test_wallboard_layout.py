"""Issue 14, items 11 and 12: the wallboard's layout in Russian and English at wall-screen widths,
and the TV mode for a wall screen."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Server, screenshot, sign_in

# Every layout defect of the issue as one list of what is wrong (empty when the layout is right).
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const inside = (inner, outer, what) => {
    const a = inner.getBoundingClientRect(), b = outer.getBoundingClientRect();
    if (a.width === 0 && a.height === 0) return;
    if (a.left < b.left - 1 || a.right > b.right + 1 || a.top < b.top - 1 || a.bottom > b.bottom + 1)
      problems.push(`${what} sticks out: ${inner.className || inner.tagName}`
        + ` "${inner.textContent.slice(0, 40)}"`);
  };
  if (document.scrollingElement.scrollWidth > window.innerWidth) problems.push("sideways scroll");
  for (const tile of document.querySelectorAll(".tile")) {
    for (const node of tile.querySelectorAll("*")) inside(node, tile, "tile content");
    for (const node of tile.querySelectorAll(".big, .figures span, h2, .badge"))
      if (node.scrollWidth > node.clientWidth + 1) problems.push(`clipped: "${node.textContent}"`);
  }
  for (const badge of document.querySelectorAll(".tile .badge, #agents .badge"))
    if (badge.getClientRects().length !== 1
        || badge.offsetHeight > 2 * parseFloat(getComputedStyle(badge).fontSize) * 1.2)
      problems.push(`badge on several lines: "${badge.textContent}"`);
  for (const select of document.querySelectorAll("#agents select, #agents button"))
    inside(select, select.closest(".panel"), "agent control");
  const tiles = [...document.querySelectorAll(".tile")];
  const box = document.getElementById("tiles").getBoundingClientRect();
  const right = Math.max(...tiles.map((t) => t.getBoundingClientRect().right));
  if (tiles.length && right < box.right - 2)
    problems.push(`tiles leave ${Math.round(box.right - right)} px empty`);
  return problems;
}"""


def signed_in_agent(server: Server, new_context: Any) -> None:
    desk = sign_in(new_context(), server, "agent1", "/desk")
    desk.select_option("#presence", "available")
    desk.wait_for_selector('#state-pill[data-state="available"]')


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("size", [(1440, 900), (1920, 1080)], ids=["1440", "1920"])
def test_the_wallboard_keeps_every_figure_inside_its_tile(
    server: Server, new_context: Any, lang: str, size: tuple[int, int]
) -> None:
    signed_in_agent(server, new_context)
    board = sign_in(new_context(viewport=size), server, "supervisor", "/wallboard")
    board.goto(f"{server.url}/lang/{lang}?next=/wallboard")
    board.wait_for_selector('#conn[data-state="open"]')
    server.post_contact("Where is my parcel", email="first@example.com")
    board.locator(".tile .waiting").filter(has_text="1").first.wait_for()
    board.locator("#agents tr", has_text="agent1").locator('.agent-state[data-state="available"]').wait_for()
    screenshot(board, f"wallboard-{lang}-{size[0]}", for_docs=size[0] == 1440)
    assert board.evaluate(LAYOUT_PROBLEMS) == []


def test_tv_mode_shows_large_figures_without_controls_and_rotates_the_queues(
    server: Server, new_context: Any
) -> None:
    board = sign_in(new_context(viewport=(1920, 1080)), server, "supervisor", "/wallboard")
    board.locator(".tile .big").first.wait_for()
    normal = board.evaluate("parseFloat(getComputedStyle(document.querySelector('.tile .big')).fontSize)")
    board.goto(f"{server.url}/wallboard?tv=1&per_page=1&rotate=1")
    board.wait_for_selector('#conn[data-state="open"]')
    board.locator(".tile .big").first.wait_for()
    large = board.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.tile:not([hidden]) .big')).fontSize)"
    )
    assert large > normal * 1.5
    visible_controls = board.evaluate(
        """() => [...document.querySelectorAll('button, select, input, a')]
             .filter((n) => n.offsetParent !== null).map((n) => n.outerHTML.slice(0, 60))"""
    )
    assert visible_controls == []
    first = board.locator(".tile:not([hidden])").get_attribute("data-queue-id")
    board.wait_for_function(
        f"""() => {{
          const shown = [...document.querySelectorAll('.tile')].filter((t) => !t.hidden);
          return shown.length === 1 && shown[0].dataset.queueId !== '{first}';
        }}"""
    )
    screenshot(board, "wallboard-tv")
