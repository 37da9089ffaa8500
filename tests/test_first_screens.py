"""First screens (issue #26 item 5): the Data tab shows computed results on load, without a click; they are
computed once per server (cached), not per visit."""
from __future__ import annotations

from tests.conftest import open_tab


def test_data_tab_shows_its_defaults_on_load(page):
    open_tab(page, "Data")
    page.wait_for_selector("#aug-gallery img", timeout=120_000)
    assert "Final tensor per draw" in page.locator("#aug-summary").inner_text()


def test_the_first_screen_is_computed_once():
    from ui import data

    first = data.first_screen()
    assert data.first_screen() is first            # the cached tuple, not a new computation
    assert len(first) == 11 and first[1].startswith("Input (3,")          # the last: the resampling table's headers
