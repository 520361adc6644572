"""The dashboard in headless Chromium against a real `embedops serve`: sign-in, each
page with no console error, plots drawn with the service's data, the dead-letter retry
and purge buttons, search with highlighted matches, the migration buttons' confirmation.
Screenshots go to ``EMBEDOPS_SCREENSHOTS`` (default: the test's tmp directory)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import NOTE, Dashboard, wait_for

pytestmark = pytest.mark.slow

PLOTS = ("plot-memory", "plot-queue", "plot-throughput", "plot-errors")


def console_errors(driver: Any, allow: tuple[str, ...] = ()) -> list[str]:
    """SEVERE browser-console entries since the last call, less the allowed ones."""
    entries = driver.get_log("browser")
    return [e["message"] for e in entries if e["level"] == "SEVERE"
            and not any(a in e["message"] for a in allow)]


def open_page(driver: Any, dashboard: Dashboard, page: str) -> None:
    """Show ``page`` freshly loaded (a new document, not only a new #hash)."""
    driver.execute_script("window.embedopsStale = true")
    driver.get(f"{dashboard.url}/ui/#{page}")
    if driver.execute_script("return window.embedopsStale === true"):
        driver.refresh()
    wait_for(lambda: driver.execute_script("return document.body.dataset.loaded") == page,
             what=f"the {page} page")


def screenshot(driver: Any, dashboard: Dashboard, name: str) -> None:
    """The whole page as ``name``.png (the window grown to the page's height)."""
    size = driver.get_window_size()
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    # the window's height holds the browser's own frame too, headless or not
    driver.set_window_size(size["width"], max(size["height"], height + 160))
    driver.save_screenshot(str(dashboard.shots / f"{name}.png"))
    driver.set_window_size(size["width"], size["height"])


def count(driver: Any, css: str) -> int:
    return int(driver.execute_script(
        "return document.querySelectorAll(arguments[0]).length", css))


def text(driver: Any, css: str) -> str:
    return str(driver.execute_script(
        "const n = document.querySelector(arguments[0]); return n ? n.textContent : ''", css))


def sign_in(driver: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "login-key")
    box.clear()
    box.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()


def test_a_wrong_key_is_refused_and_a_good_one_is_kept_for_the_session(
        browser: Any, dashboard: Dashboard) -> None:
    browser.get(f"{dashboard.url}/ui/")
    wait_for(lambda: browser.execute_script("return !document.getElementById('login').hidden"),
             what="the sign-in form")
    sign_in(browser, "eo_00000000_not-a-key")
    wait_for(lambda: "refused" in text(browser, "#login-error"), what="the refusal")
    assert "unknown or revoked" in text(browser, "#login-error")
    assert browser.execute_script("return sessionStorage.length") == 0
    assert browser.execute_script("return document.getElementById('nav').hidden") is True
    screenshot(browser, dashboard, "login-refused")
    # the two refusals (no key at load, then the wrong one) are the only errors
    assert console_errors(browser, allow=("401",)) == []

    sign_in(browser, dashboard.admin_key)
    wait_for(lambda: browser.execute_script("return document.body.dataset.loaded"),
             what="the first page after sign-in")
    stored = browser.execute_script("return sessionStorage.getItem('embedops-api-key')")
    assert stored == dashboard.admin_key
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.execute_script("return document.cookie") == ""
    assert console_errors(browser) == []


def test_the_overview_plots_the_sampled_time_series(browser: Any,
                                                    dashboard: Dashboard) -> None:
    before = dashboard.get("/ui/api/series", minutes=5)
    written = dashboard.post("/collections/notes/documents?wait=true", {"documents": [
        {"id": f"live-{n}", "text": f"Live note {n}: the queue drains into the index."}
        for n in range(8)]})
    assert all(d["status"] == "embedded" for d in written["documents"])
    series = wait_for(lambda: (s := dashboard.get("/ui/api/series", minutes=5))
                      and len(s["t"]) >= len(before["t"]) + 3
                      and any(v for v in s["vectors_per_s"] if v) and s,
                      what="samples that saw the writes")
    assert max(v for v in series["vectors_per_s"] if v is not None) > 0

    open_page(browser, dashboard, "overview")
    for plot in PLOTS:
        assert count(browser, f"#{plot} .main-svg") >= 1, plot
        assert count(browser, f"#{plot} .scatterlayer .trace") >= 1, plot
        assert count(browser, f"#{plot} .scatterlayer path.point") >= 3, plot
    assert count(browser, "#plot-memory .shapelayer path") >= 2  # the 80% and 100% lines
    collections = {c["name"]: c for c in dashboard.get("/collections")["collections"]}
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#collections-table tbody tr')]"
        ".map((tr) => [...tr.children].map((td) => td.textContent))")
    shown = {row[0]: row for row in rows}
    assert set(shown) == set(collections)
    assert int(shown["notes"][1]) == collections["notes"]["points"]
    assert shown["docs"][7] == "kb"
    screenshot(browser, dashboard, "overview")
    assert console_errors(browser) == []


def test_quality_plots_each_canary_run_with_its_baseline_band(browser: Any,
                                                              dashboard: Dashboard) -> None:
    quality = dashboard.get("/ui/api/quality")
    (canary,) = quality["canaries"]
    assert len(canary["runs"]) == 3 and canary["baseline_recall"] is not None
    open_page(browser, dashboard, "quality")
    plot = "#plot-canary-docs-qa"
    assert count(browser, f"{plot} .scatterlayer .trace") == 2  # recall@10 and nDCG@10
    assert count(browser, f"{plot} .scatterlayer path.point") == 6
    assert count(browser, f"{plot} .shapelayer path") >= 3  # band, baseline, alert line
    floor = canary["baseline_recall"] - canary["threshold_points"] / 100
    assert (f"alert below {floor:.3f} ({canary['threshold_points']:g} points under the "
            "baseline)") in text(browser, plot)
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#eval-docs-qa tbody tr')]"
        ".map((tr) => [...tr.children].map((td) => td.textContent))")
    shown = dict(rows)
    for metric, value in canary["latest_metrics"].items():
        assert shown[metric] == f"{value:.4f}"
    screenshot(browser, dashboard, "quality")
    assert console_errors(browser) == []


def test_the_retry_button_retries_a_dead_letter(browser: Any, dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By

    letters = dashboard.get("/ui/api/dead-letters")["dead_letters"]
    assert [(d["collection"], d["doc_id"]) for d in letters] == [("notes", "broken.txt")]
    (dashboard.notes / "broken.txt").write_text(NOTE.replace("keep", "record"))
    open_page(browser, dashboard, "dead-letters")
    screenshot(browser, dashboard, "dead-letters")
    browser.find_element(By.CSS_SELECTOR, "button.retry[data-doc='broken.txt']").click()
    wait_for(lambda: "retried 1" in text(browser, "#dl-result"), what="the retry")
    assert dashboard.get("/ui/api/dead-letters")["dead_letters"] == []
    stored = dashboard.get("/collections/notes/documents/broken.txt")
    assert "record the reason" in stored["text"]
    assert console_errors(browser) == []


def test_the_purge_button_asks_first(browser: Any, dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By

    failed = dashboard.post("/collections/notes/documents?wait=true",
                            {"documents": [{"id": "blank", "text": " \n "}]})
    assert failed["documents"][0]["status"] == "failed"
    open_page(browser, dashboard, "dead-letters")
    button = "button.purge[data-doc='blank']"
    browser.find_element(By.CSS_SELECTOR, button).click()
    browser.switch_to.alert.dismiss()
    assert [d["doc_id"] for d in dashboard.get("/ui/api/dead-letters")["dead_letters"]] == [
        "blank"]
    browser.find_element(By.CSS_SELECTOR, button).click()
    browser.switch_to.alert.accept()
    wait_for(lambda: "purged 1" in text(browser, "#dl-result"), what="the purge")
    assert dashboard.get("/ui/api/dead-letters")["dead_letters"] == []
    assert console_errors(browser) == []


def test_search_shows_hits_with_the_matches_marked(browser: Any,
                                                   dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, dashboard, "search")
    Select(browser.find_element(By.ID, "search-target")).select_by_value("notes")
    browser.find_element(By.ID, "search-query").send_keys("dead letters reason stage")
    browser.find_element(By.ID, "search-filter").send_keys('doc_id = "good.txt"')
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait_for(lambda: "in notes" in text(browser, "#search-status"), what="the hits")
    heads = browser.execute_script(
        "return [...document.querySelectorAll('#search-results .hit-head strong')]"
        ".map((n) => n.textContent)")
    assert heads == ["good.txt"]  # the filter kept only that document
    marks = browser.execute_script(
        "return [...document.querySelectorAll('#search-results mark')]"
        ".map((n) => n.textContent.toLowerCase())")
    assert {"dead", "letters", "reason", "stage"} <= set(marks)
    screenshot(browser, dashboard, "search")
    assert console_errors(browser) == []


def test_migrations_show_progress_and_evaluation_and_confirm_the_swap(
        browser: Any, dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By

    # the server's gate lets any shadow pass (migration_max_drop_points=100): the hashing
    # models have no quality to compare, and the test is of the buttons
    dashboard.post("/admin/migrations/kb/start", {"to": "testing/hash-e5-64"})
    wait_for(lambda: dashboard.get("/admin/migrations/kb")["phase"] == "ready", timeout=30,
             what="the backfill")
    report = dashboard.post("/admin/migrations/kb/evaluate", {"dataset": "docs-qa"})
    assert report["gate_passed"]
    open_page(browser, dashboard, "migrations")
    view = ".migration[data-alias='kb']"
    assert text(browser, f"{view} .phase") == "ready"
    progress = browser.execute_script(
        "const p = document.querySelector(arguments[0]); return [p.value, p.max]",
        f"{view} progress")
    assert progress[0] == progress[1] == 70
    rows = dict(browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((tr) =>"
        " [tr.children[0].textContent, [tr.children[1].textContent,"
        " tr.children[2].textContent]])", f"{view} table.evaluation tbody tr"))
    assert rows["recall@10"] == [str(report["live"]["recall@10"]),
                                 str(report["shadow"]["recall@10"])]
    screenshot(browser, dashboard, "migrations")
    swap = f"{view} button[data-action='swap']"
    browser.find_element(By.CSS_SELECTOR, swap).click()
    browser.switch_to.alert.dismiss()
    assert dashboard.get("/admin/migrations/kb")["phase"] == "ready"
    browser.find_element(By.CSS_SELECTOR, swap).click()
    browser.switch_to.alert.accept()
    wait_for(lambda: dashboard.get("/admin/migrations/kb")["phase"] == "swapped",
             what="the swap")
    assert dashboard.get("/aliases")["aliases"]["kb"] == report["shadow"]["collection"]
    wait_for(lambda: text(browser, f"{view} .phase") == "swapped", what="the page to follow")
    browser.find_element(By.CSS_SELECTOR, f"{view} button[data-action='rollback']").click()
    browser.switch_to.alert.accept()
    wait_for(lambda: dashboard.get("/admin/migrations/kb")["phase"] == "rolled_back",
             what="the rollback")
    assert dashboard.get("/aliases")["aliases"]["kb"] == "docs"
    assert console_errors(browser) == []


def test_a_read_key_sees_the_pages_but_not_the_actions(browser: Any,
                                                       dashboard: Dashboard) -> None:
    browser.execute_script("sessionStorage.setItem('embedops-api-key', arguments[0])",
                           dashboard.read_key)
    open_page(browser, dashboard, "dead-letters")
    assert browser.execute_script(
        "return [...document.querySelectorAll('button.admin')].every((b) => b.disabled)")
    refused = httpx.post(f"{dashboard.url}/ui/api/dead-letters/purge", json={},
                         headers={"Authorization": f"Bearer {dashboard.read_key}"})
    assert refused.status_code == 403
    assert console_errors(browser) == []
