"""The report's sample browser in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium with no network): the page loads without script errors,
shows the calls of a real run, filters by strategy, score, class and role as pandas counts them
in calls.parquet, pages, notes a cap on a large run, and shows hostile output as inert text."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakeserver import FakeOpenAI, solve_arithmetic

import ttcbench
from ttcbench.analysis.report import build_report
from ttcbench.analysis.report_data import RunSet
from ttcbench.analysis.report_render import Section, write_html
from ttcbench.analysis.report_samples import (
    PAGE_SIZE,
    SCRIPT,
    embed_json,
    sample_payload,
    samples_section,
    select_samples,
)

HOSTILE = "</script><script>window.pwned=1</script><img src=x onerror=window.pwned=2> é中\u2028"


def reply(body: dict) -> str:
    """Right or wrong by a hash of prompt and seed; some outputs are hostile HTML."""
    prompt = body["messages"][-1]["content"]
    draw = int(hashlib.sha256(f"{prompt}|{body.get('seed')}".encode()).hexdigest(), 16)
    if draw % 5 == 0:
        return f"{HOSTILE} The answer is {1000 + draw % 3}"
    if draw % 4 == 0:
        return f"The answer is {1000 + draw % 3}"
    return solve_arithmetic(body)


def browser_paths() -> tuple[str, str]:
    """Chromium and its driver, or skip (fail under CI, which installs them: .ci/run)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if not chromium or not Path(driver).exists():
        missing.append("chromium and chromedriver (apt-get install chromium chromium-driver)")
    if missing:
        message = f"the sample browser test needs {' and '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(chromium), driver


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium, driver = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = chromium  # with the driver's path given, nothing is downloaded
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real runs on a scripted server: majority_vote (generate) and self_refine
    (generate, critique, revise), on arithmetic problems of two difficulty classes."""
    results = tmp_path_factory.mktemp("browser") / "results"
    folders = []
    with FakeOpenAI(reply) as server:
        for strategy in ("majority_vote", "self_refine"):
            folders.append(
                ttcbench.run(
                    [
                        f"results_dir={results}",
                        f"cache.path={results}/cache.sqlite",
                        "logger=none",
                        "task.limit=6",
                        "budget.values=[1,2,4]",
                        "model=llamacpp_server",
                        f"model.api_base={server.api_base}",
                        f"strategy={strategy}",
                    ]
                )  # fmt: skip
            )
    return folders


@pytest.fixture(scope="module")
def calls(runs: list[Path]) -> pd.DataFrame:
    frame = pd.concat([pd.read_parquet(run / "calls.parquet") for run in runs])
    unscored = frame["score"].isna() | frame["error"].notna()
    frame["state"] = np.where(
        unscored, "unscored", np.where(frame["score"] >= 1, "correct", "wrong")
    )
    return frame


@pytest.fixture(scope="module")
def page(runs: list[Path], browser, tmp_path_factory: pytest.TempPathFactory):
    report = build_report(runs, tmp_path_factory.mktemp("report"), n_resamples=50,
                          fit_resamples=0)  # fmt: skip
    browser.get(report.html.as_uri())
    return browser, report


def matching(browser) -> int:
    status = browser.find_element("id", "sb-status")
    return int(status.get_attribute("data-matching"))


def cards(browser) -> list:
    return browser.find_elements("css selector", "#sb-list .sb-card")


def choose(browser, facet: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", f"select[data-facet='{facet}']")).select_by_value(
        value
    )


def reset(browser) -> None:
    """Every filter back to "all", as a user would set them, in one round trip."""
    browser.execute_script(
        """document.querySelectorAll("#sb-filters select").forEach(function (s) {
             s.value = ""; s.dispatchEvent(new Event("change")); });"""
    )


def severe(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_page_loads_and_shows_every_call(page, calls: pd.DataFrame) -> None:
    browser, report = page
    assert severe(browser) == []
    assert matching(browser) == len(calls) > PAGE_SIZE
    assert len(cards(browser)) == PAGE_SIZE
    facets = [
        s.get_attribute("data-facet") for s in browser.find_elements("css selector", "select")
    ]
    classes = sorted(c for c in calls.columns if c.startswith("class_"))
    assert "class_difficulty" in classes
    assert facets == ["task", *classes, "strategy", "score", "role"]
    first = cards(browser)[0].text
    for label in ("problem", "target", "extracted", "score", "output", "tokens", "latency",
                  "cost", "difficulty="):  # fmt: skip
        assert label in first
    assert "Sample browser: open `report.html`" in report.markdown.read_text()


def test_filters_match_pandas_counts(page, calls: pd.DataFrame) -> None:
    browser, _ = page
    for facet, column in [("strategy", "strategy"), ("score", "state"), ("role", "role"),
                          ("class_difficulty", "class_difficulty")]:  # fmt: skip
        counts = calls[column].value_counts()
        assert len(counts) >= 2, column  # every filter really splits the calls
        for value, count in counts.items():
            reset(browser)
            choose(browser, facet, str(value))
            assert matching(browser) == count, (facet, value)
            assert len(cards(browser)) == min(count, PAGE_SIZE)
    reset(browser)
    choose(browser, "strategy", "self_refine")
    choose(browser, "role", "critique")
    both = calls[(calls.strategy == "self_refine") & (calls.role == "critique")]
    assert matching(browser) == len(both) > 0
    assert all(
        "critique" in card.text and "unscored" in card.text.lower() for card in cards(browser)
    )
    assert severe(browser) == []


def test_paging(page, calls: pd.DataFrame) -> None:
    browser, _ = page
    reset(browser)
    first = cards(browser)[0].text
    browser.find_element("id", "sb-next").click()
    assert len(cards(browser)) == len(calls) - PAGE_SIZE
    assert browser.find_element("id", "sb-page").text == "page 2 of 2"
    assert browser.find_element("id", "sb-next").get_attribute("disabled")
    browser.find_element("id", "sb-prev").click()
    assert cards(browser)[0].text == first


def test_hostile_output_is_text(page, calls: pd.DataFrame) -> None:
    browser, report = page
    hostile = calls["output"].str.contains("window.pwned", regex=False).sum()
    assert hostile > 0
    reset(browser)
    search = browser.find_element("id", "sb-q")
    search.send_keys("window.pwned")
    assert matching(browser) == hostile
    output = cards(browser)[0].find_element("css selector", ".sb-out")
    assert output.get_attribute("textContent").startswith(HOSTILE)
    assert browser.execute_script("return window.pwned") is None
    assert browser.find_elements("css selector", "#sb-list img") == []
    source = report.html.read_text()
    assert "window.pwned" in source and "</script><script>window" not in source
    assert "<img src=x" not in source
    search.clear()
    assert severe(browser) == []


def big_calls(problems: int = 400, samples: int = 8) -> pd.DataFrame:
    """A large run's calls: three strategies x `problems` x `samples`."""
    grid = pd.MultiIndex.from_product(
        [["majority_vote", "best_of_n", "self_refine"], range(problems), range(samples)],
        names=["strategy", "problem_id", "sample_index"],
    ).to_frame(index=False)
    n = len(grid)
    return grid.assign(
        problem_id=grid["problem_id"].map("p{:04d}".format),
        task="arithmetic", role="generate", model="m", key=[f"k{i}" for i in range(n)],
        messages=[json.dumps([{"role": "user", "content": f"Calculate {i}."}]) for i in range(n)],
        output="The answer is 1", extracted="1", score=(np.arange(n) % 3 == 0).astype(float),
        error=None, prompt_tokens=10, completion_tokens=5, latency_s=0.1, cost_usd=0.0,
        class_difficulty=np.where(grid["problem_id"] % 2 == 0, "easy", "hard"),
    )  # fmt: skip


def test_selection_is_stratified_and_deterministic() -> None:
    calls = big_calls()
    chosen = select_samples(calls, 2000)
    assert len(chosen) == 2000
    pairs = chosen[["strategy", "problem_id"]].drop_duplicates()
    assert len(pairs) == 3 * 400  # every strategy x problem has a sample
    assert chosen.equals(select_samples(calls.sample(frac=1, random_state=1), 2000))
    few = select_samples(calls, 7)
    assert set(few["strategy"]) == {"majority_vote", "best_of_n", "self_refine"}
    assert len(select_samples(calls, None)) == len(calls)


def test_large_run_is_capped_with_a_note(browser, tmp_path: Path) -> None:
    calls = big_calls()
    runs = RunSet(pd.DataFrame(), calls, [], ["arithmetic"], {"m": None})
    section = samples_section(runs, 2000)
    path = write_html(tmp_path / "big.html", "big", [section], {})
    browser.get(path.as_uri())
    note = browser.find_element("id", "sb-cap").text
    assert "Showing 2,000 of 9,600 calls" in note and "--samples all" in note
    assert matching(browser) == 2000
    assert browser.find_element("id", "sb-page").text == "page 1 of 40"
    choose(browser, "score", "correct")
    payload = sample_payload(calls, 2000)
    states = [row[payload["columns"].index("score")] for row in payload["rows"]]
    assert matching(browser) == states.count("correct") > 0
    assert severe(browser) == []
    section_all = samples_section(runs, None)
    assert "All 9,600 calls" in section_all.html and section_all.script == SCRIPT


def test_embedded_json_cannot_end_its_element() -> None:
    text = embed_json({"o": HOSTILE + "<!-- & \ud800"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["o"].startswith(HOSTILE)


def test_markdown_and_html_without_calls(tmp_path: Path) -> None:
    empty = samples_section(RunSet(pd.DataFrame(), pd.DataFrame(), [], [], {}))
    assert "no call records" in empty.text[0] and not empty.html
    html = write_html(tmp_path / "r.html", "t", [Section("x")], {}).read_text()
    assert "script-src 'none'" in html and "<script" not in html


def test_cli_samples_option() -> None:
    from ttcbench.analysis.report import _parser

    assert _parser().parse_args(["runs", "--samples", "all"]).samples is None
    assert _parser().parse_args(["runs", "--samples", "300"]).samples == 300
    assert _parser().parse_args(["runs"]).samples == 2000


def test_run_filter_only_for_a_sweep() -> None:
    calls = big_calls(problems=4, samples=2)
    by_strategy = calls.assign(run="results/a/" + calls["strategy"])
    assert "run" not in {f[0] for f in sample_payload(by_strategy, None)["facets"]}
    sweep = calls.assign(run=np.where(calls["sample_index"] == 0, "r/t0.7", "r/t1.0"))
    payload = sample_payload(sweep, None)
    assert ["run", "run"] in payload["facets"]
    runs = {row[payload["columns"].index("run")] for row in payload["rows"]}
    assert runs == {"r/t0.7", "r/t1.0"}
