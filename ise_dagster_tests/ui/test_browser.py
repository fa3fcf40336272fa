"""The Dagster UI in a real browser (headless Chromium through Playwright), against
`dagster dev` started the way `make ui` starts it: the asset graph, an asset's checks and
metadata, one partition launched from the UI and run to Success, and the partitions views.

Screenshots go to $ISE_SCREENSHOT_DIR (default: a pytest temp directory); the README's
come from here."""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ise_dagster_tests.helpers import require_docker
from ise_dagster_tests.ui.dagster_dev import DAGSTER, LOCATION, REPO, DagsterDev

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the `dev` extra installs it
    expect = sync_playwright = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOMAIN = "File-IO"
PAGE_TIMEOUT_MS = 60_000  # 2 slow cores: the first render of a page can take a while
RUN_TIMEOUT_MS = 300_000  # one intents partition: about 20-40 s


def _skip_or_fail(reason: str) -> None:
    """Skip where the browser is missing; CI installs it (.ci/run), so there it fails."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if sync_playwright is None:
        _skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    path = shutil.which("chromium")
    if path is None:
        _skip_or_fail("no `chromium` on PATH (Debian: apt-get install chromium; .ci/run does it)")
    return path


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = Path(os.environ.get("ISE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def dev(chromium_path, tmp_path_factory):
    server = DagsterDev(tmp_path_factory.mktemp("dagster-dev")).start()
    try:
        server.wait_ready(timeout=180)
        yield server
    finally:
        server.stop(timeout=30)  # Ctrl-C, then SIGKILL for anything left


@pytest.fixture(scope="module")
def browser(chromium_path):
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, dev):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    # A first visit may get Dagster's "Join the Dagster community" dialog over the page.
    community = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    page.add_locator_handler(
        community, lambda dialog: dialog.get_by_role("button", name="Skip").click()
    )
    yield page
    context.close()


def _visible_text(page, text: str):
    """The last visible element showing exactly `text` (lists repeat labels off-screen)."""
    return page.get_by_text(text, exact=True).filter(visible=True).last


def _label(text: str) -> re.Pattern:
    """An accessible name that is `text`, or `text` twice: Dagster's truncating labels
    repeat it ("intents intents"). Never a longer name that starts the same (intent_pool)."""
    name = re.escape(text)
    return re.compile(rf"^{name}(\s+{name})?$")


def _tab(page, name: str):
    """The asset page's tab (the first one: a check's own tabs repeat some names)."""
    return page.get_by_role("tab", name=name, exact=True).first


def _asset_link(page, asset: str):
    return page.get_by_role("link", name=_label(asset)).first


def _open_asset(page, dev: DagsterDev, asset: str, tab: str) -> None:
    page.goto(f"{dev.url}/assets")
    _asset_link(page, asset).click()
    expect(page).to_have_title(re.compile(rf"\b{asset}\b"))
    _tab(page, tab).click()


def _cli_materialize(dev: DagsterDev, select: str, partition: str, config=None) -> None:
    cmd = [str(DAGSTER), "asset", "materialize", "-m", LOCATION, "--select", select,
           "--partition", partition]  # fmt: skip
    if config:
        cmd += ["--config-json", json.dumps(config)]
    done = subprocess.run(cmd, cwd=REPO, env=dev.env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_asset_graph_shows_the_pipeline(dev, page, shots):
    page.goto(dev.url)
    page.get_by_role("link", name="Catalog").click()
    for asset in ("intents", "dialogues", "executed_traces", "sft_dataset"):
        expect(_asset_link(page, asset)).to_be_visible()

    _asset_link(page, "dialogues").click()
    _tab(page, "Lineage").click()
    # The neighbours graph: Stage 1 upstream, Stage 3 and 4 downstream, one node each.
    for asset in ("intents", "dialogues", "executed_traces", "sft_dataset"):
        expect(_visible_text(page, asset)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ partitions$"))).to_have_count(4)
    for group in ("stage1_intents", "stage2_dialogues", "stage3_traces", "stage4_datasets"):
        expect(_visible_text(page, group)).to_be_visible()
    page.screenshot(path=shots / "01-asset-lineage.png")


def test_launch_one_intents_partition_from_the_ui(dev, page, shots):
    """Stage 1 for one domain at the paper's scale (4,396 intents), launched from the
    asset's Materialize dialog; no Docker needed."""
    _open_asset(page, dev, "intents", "Overview")
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize intents")
    expect(dialog).to_be_visible()
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem", name=_label(DOMAIN)).click()
    page.keyboard.press("Escape")  # close the partition menu, keep the dialog
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    launch.click()

    # The toast links to the run; its page turns to Success when the run ends.
    page.get_by_role("link", name="View", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    expect(_visible_text(page, f"partition: {DOMAIN}")).to_be_visible()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page).to_have_title(re.compile(r"\[SUCCESS\]"))
    page.screenshot(path=shots / "02-intents-run-success.png")

    # Checks tab: the five Stage 1 checks, each evaluated on this partition and passed.
    _open_asset(page, dev, "intents", "Checks")
    checks = ["intents_complexity_mix", "intents_ids_unique", "intents_near_dup_rate",
              "intents_rows_valid", "intents_vendi"]  # fmt: skip
    for check in checks:
        expect(_visible_text(page, check)).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(checks))
    expect(_visible_text(page, "Passed")).to_be_visible()
    page.screenshot(path=shots / "03-intents-checks.png")

    # Overview: the materialization's row count and metadata.
    _tab(page, "Overview").click()
    expect(_visible_text(page, "Row count")).to_be_visible()
    expect(_visible_text(page, "4,396")).to_be_visible()
    for key in ("vendi_score", "kept", "dropped_near_duplicates"):
        expect(_visible_text(page, key)).to_be_visible()
    page.screenshot(path=shots / "04-intents-overview-metadata.png", full_page=True)

    # Partitions: one of ten domains materialized; its own metadata when selected.
    _tab(page, "Partitions").click()
    expect(_visible_text(page, "Materialized (1)")).to_be_visible()
    expect(_visible_text(page, "Missing (9)")).to_be_visible()
    _visible_text(page, DOMAIN).click()
    expect(page).to_have_url(re.compile(rf"partition={DOMAIN}"))
    expect(_visible_text(page, "vendi_score")).to_be_visible()
    page.screenshot(path=shots / "05-intents-partitions.png")


@pytest.mark.docker
def test_daily_partitions_after_a_nightly_run(dev, page, shots):
    """One date|domain of Stages 2-4 (Docker), then its cell in the daily partitions view."""
    require_docker()
    if not (dev.data_dir / "intents" / f"{DOMAIN}.parquet").exists():  # run alone
        small = {"ops": {"intents": {"config": {"intents_per_domain": 60}}}}
        _cli_materialize(dev, "intents", DOMAIN, small)
    date = time.strftime("%Y-%m-%d", time.gmtime())  # today's partition (end_offset=1)
    _cli_materialize(dev, "dialogues,executed_traces,sft_dataset", f"{date}|{DOMAIN}")

    _open_asset(page, dev, "dialogues", "Partitions")
    expect(_visible_text(page, "Materialized (1)")).to_be_visible()
    _visible_text(page, date).click()
    _visible_text(page, DOMAIN).click()
    expect(_visible_text(page, f"{date}|{DOMAIN}")).to_be_visible()
    expect(_visible_text(page, "Materialized")).to_be_visible()
    for key in ("summary", "completed", "tool_calls_mean"):
        expect(_visible_text(page, key)).to_be_visible()
    page.screenshot(path=shots / "06-dialogues-daily-partitions.png")
