"""The report: built from real runs (a scripted OpenAI-compatible server answering right or
wrong by a hash of prompt, seed and model), checked against the runs' own summary.csv, the
analysis modules called directly, the files it links, the CLI's exit codes, and W&B's files."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wandb
from fakeserver import FakeOpenAI, solve_arithmetic
from run_folders import run_folder
from wandbfiles import items, records_by_type

import ttcbench
from ttcbench.analysis.matched import flops_matched, load_runs
from ttcbench.analysis.report import ReportError, build_report, main


def reply(body: dict) -> str:
    """Right or wrong by a hash: the large model is right more often, hard problems less."""
    prompt = body["messages"][-1]["content"]
    draw = int(
        hashlib.sha256(f"{prompt}|{body.get('seed')}|{body['model']}".encode()).hexdigest(), 16
    )
    wrong_in = 6 if body["model"] == "large" else 3  # 1 in 3 wrong for the small model
    if draw % wrong_in == 0 or ("+" in prompt and draw % 7 == 0):
        return f"The answer is {1000 + draw % 3}"
    return solve_arithmetic(body)


def job(server: FakeOpenAI, results: Path, *extra: str) -> Path:
    return ttcbench.run(
        [f"results_dir={results}", f"cache.path={results}/cache.sqlite", "logger=none",
         "task.limit=8", "budget.values=[1,2,4,8]", "model=llamacpp_server",
         f"model.api_base={server.api_base}", *extra]
    )  # fmt: skip


SMALL = ["model.name=small", "model.model=openai/small", "model.params_b=0.2"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder: the small model with majority_vote and best_of_n[oracle], and a
    large model's single sample (budget 1) at five times the parameters."""
    results = tmp_path_factory.mktemp("sweep") / "results"
    with FakeOpenAI(reply) as server:
        job(server, results, *SMALL, "strategy=majority_vote")
        job(server, results, *SMALL, "strategy=best_of_n")
        job(server, results, "model.name=large", "model.model=openai/large",
            "model.params_b=1.0", "strategy=majority_vote", "budget.values=[1]")  # fmt: skip
    return results


def small_runs(sweep: Path) -> list[Path]:
    return sorted((sweep / "arithmetic/small").iterdir())


@pytest.fixture(scope="module")
def report(sweep: Path, tmp_path_factory: pytest.TempPathFactory):
    return build_report(small_runs(sweep), tmp_path_factory.mktemp("report"), fit_resamples=20)


def html_row(html: str, *cells: object, caption: str = "") -> list[str]:
    """The cells of the first table row starting with `cells` after the caption."""
    start = "<tr>" + "".join(f"<td>{c}</td>" for c in cells)
    begin = html.index(start, html.index(f"<caption>{caption}"))
    row = html[begin : html.index("</tr>", begin)]
    return re.findall(r"<td>(.*?)</td>", row)


def test_html_is_self_contained(report) -> None:
    html = report.html.read_text()
    links = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)""", html)
    assert links and all(link.startswith("data:") for link in links)
    assert html.count("<img ") == len(report.figures) >= 5
    assert "<link" not in html and "@import" not in html
    # Only the sample browser's inline data and script (report_samples), nothing loaded.
    assert re.findall(r"<script[^>]*>", html) == [
        "<script type='application/json' id='sb-data'>",
        "<script>",
    ]


def test_summary_table_matches_summary_csv(report, sweep: Path) -> None:
    html = report.html.read_text()
    for run in small_runs(sweep):
        csv = pd.read_csv(run / "summary.csv")
        for r in csv.itertuples():
            deployable = "no (oracle)" if "oracle" in r.strategy else "yes"
            row = html_row(html, r.strategy, deployable, r.budget, caption="per strategy")
            assert row[5] == f"{r.accuracy:.3f}"  # strategy, deployable, budget, problems, errors
            assert row[6] == f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
            ours = report.tables["summary"].set_index(["strategy", "budget"])
            assert ours.loc[(r.strategy, r.budget), "accuracy"] == pytest.approx(r.accuracy)
    assert 0.4 < report.tables["summary"]["accuracy"].min() < 0.95  # the data are not trivial


def test_markdown_links_existing_figures(report) -> None:
    markdown = report.markdown.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(links) == len(report.figures)
    for link in links:
        png = (report.markdown.parent / link).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "| majority_vote | yes | 8 |" in markdown


def test_headline_table_is_sorted_and_exact(report, sweep: Path) -> None:
    gains = report.tables["which_classes_gain"]
    assert list(gains["gain_per_doubling"]) == sorted(gains["gain_per_doubling"], reverse=True)
    assert {"all", "difficulty=easy", "difficulty=hard", "model_difficulty=d1"} <= set(
        gains["class"]
    )
    # Gain over all problems = (acc at 8 - acc at 1) / log2(tokens at 8 / tokens at 1).
    run = run_folder(sweep / "arithmetic/small", "majority_vote-pow2_8")
    csv = pd.read_csv(run / "summary.csv")
    first, last = csv.iloc[0], csv.iloc[-1]
    expected = (last.accuracy - first.accuracy) / math.log2(last.tokens / first.tokens)
    row = gains[(gains["class"] == "all") & (gains["strategy"] == "majority_vote")].iloc[0]
    assert row["gain_per_doubling"] == pytest.approx(expected)
    assert row["gain_low"] <= expected <= row["gain_high"]
    html = report.html.read_text()
    cells = html_row(html, "all", "majority_vote", caption="class × strategy")
    assert cells[5] == f"{expected:.3f}"


def test_notes_fits_coverage_and_frontier(report) -> None:
    markdown = report.markdown.read_text()
    assert "disjoint split" in markdown and "odd positions" in markdown
    html = report.html.read_text()
    assert "not a deployable strategy" in html
    assert html_row(html, "best_of_n[oracle]", "no (oracle)", caption="per strategy")
    fits = report.tables["fits"].set_index(["class", "strategy"])
    fit = fits.loc[("all", "majority_vote")]
    assert fit["status"] in ("ok", "flat") and 0 <= fit["floor"] <= fit["ceiling"] <= 1
    assert fit["compute_min"] == pytest.approx(17.0) and fit["compute_max"] == pytest.approx(136.0)
    assert fits.loc[("model_difficulty=d1", "majority_vote"), "status"] == "failed"  # 3 budgets
    coverage = report.tables["coverage"]
    at_all = coverage[coverage["series"] == "all"].set_index("budget")["accuracy"]
    assert at_all.is_monotonic_increasing and list(at_all.index) == [1, 2, 4, 8]
    assert report.tables["coverage_fits"].set_index("series").loc["all", "status"] == "ok"
    front = report.tables["frontier"]
    assert len(front) == 4 and not front["best_strategy"].str.contains("oracle").any()
    assert report.metrics["report/accuracy_at_max/majority_vote"] == pytest.approx(
        report.tables["summary"].query("strategy == 'majority_vote'")["accuracy"].iloc[-1]
    )


def test_folder_of_runs_two_models_and_flops_matched(sweep: Path, tmp_path: Path) -> None:
    result = build_report([sweep], tmp_path, fit_resamples=0, by=["difficulty"])
    labels = set(result.tables["summary"]["strategy"])
    assert labels == {"small: majority_vote", "small: best_of_n[oracle]", "large: majority_vote"}
    ours = result.tables["flops_matched"].set_index("strategy")
    runs = [*small_runs(sweep), run_folder(sweep / "arithmetic/large", "majority_vote-one")]
    direct = flops_matched(load_runs(runs), small="small", large="large").set_index("strategy")
    row = ours.loc["majority_vote"]
    assert row["in_range"] and row["diff"] == pytest.approx(direct.loc["majority_vote", "diff"])
    assert row["flops"] == pytest.approx(2e9 * 1.0 * 17)  # one 17-token sample of the large model
    assert "FLOPs-matched" in result.markdown.read_text()
    assert "model_difficulty" not in set(result.tables["which_classes_gain"]["class"].str[:16])


def test_parquet_export_gives_the_same_numbers(report, sweep: Path, tmp_path: Path) -> None:
    for run in small_runs(sweep):  # an export without its store: Parquet and config only
        copy = tmp_path / "export" / run.name
        copy.mkdir(parents=True)
        for name in ("attempts.parquet", "calls.parquet", "config.yaml"):
            shutil.copy(run / name, copy / name)
    result = build_report([tmp_path / "export"], tmp_path / "out", fit_resamples=20)
    pd.testing.assert_frame_equal(result.tables["summary"], report.tables["summary"])
    pd.testing.assert_frame_equal(
        result.tables["which_classes_gain"], report.tables["which_classes_gain"]
    )


def test_reference_overlay(sweep: Path, tmp_path: Path) -> None:
    result = build_report(
        small_runs(sweep), tmp_path, fit_resamples=0, references=["wang2022_self_consistency"]
    )
    assert "references" in result.figures
    html = result.html.read_text()
    assert "Wang et al. 2022" in html and "<td>74.4</td>" in html
    assert "Published on gsm8k" in html  # our task differs: shapes, not levels


def test_compute_axes(sweep: Path, tmp_path: Path) -> None:
    runs = small_runs(sweep)
    calls = build_report(runs, tmp_path / "calls", x="calls", fit_resamples=0, by=[])
    summary = calls.tables["summary"]
    assert np.allclose(summary["compute"], summary["budget"])  # one call per sample
    flops = build_report(runs, tmp_path / "flops", x="flops", fit_resamples=0, by=[])
    assert np.allclose(flops.tables["summary"]["compute"], 2e9 * 0.2 * summary["tokens"])
    with pytest.raises(ReportError, match="--x total_tokens"):
        build_report(runs, tmp_path / "cost", x="cost_usd")  # a local server costs nothing
    with pytest.raises(ReportError, match="use --by one of difficulty"):
        build_report(runs, tmp_path / "bad", by=["nonsense"])


def test_cli(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [str(r) for r in small_runs(sweep)]
    out = tmp_path / "cli"
    assert main([*runs, "-o", str(out), "--x", "calls", "--fit-resamples", "0"]) == 0
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert "calls per problem" in (out / "report.md").read_text()
    bad = {
        "no runs found": [str(tmp_path / "cli" / "report_figures")],
        "unknown compute axis 'gpu_hours': use one of budget": [*runs, "--x", "gpu_hours"],
        "no reference named 'nope'": [*runs, "--reference", "nope"],
    }
    for message, argv in bad.items():
        capsys.readouterr()
        assert main([*argv, "-o", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.startswith("ttcbench-report: error:")
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()  # bad input writes nothing


def wandb_run_files(run_dir: Path) -> tuple[Path, dict[str, list]]:
    wandb.teardown()  # wait until wandb's service has flushed the offline log to disk
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (log_file,) = offline.glob("run-*.wandb")
    return offline, records_by_type(log_file)


def check_wandb_report(run_dir: Path) -> None:
    """The job's W&B run holds the report's figures as images, its tables and metrics."""
    offline, by_type = wandb_run_files(run_dir)
    history = {k: v for r in by_type["history"] for k, v in items(r.history.item).items()}
    image = offline / "files" / history["report/figures/accuracy_vs_compute.path"]
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads((offline / "files" / history["report/tables/summary.path"]).read_text())
    summary = pd.read_csv(run_dir / "summary.csv")
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [r["accuracy"] for r in rows] == pytest.approx(list(summary["accuracy"]))
    assert "report/tables/which_classes_gain.path" in history
    metrics: dict = {}
    for record in by_type["summary"]:
        metrics.update(items(record.summary.update))
    assert metrics["report/accuracy_at_max/majority_vote"] == pytest.approx(
        summary["accuracy"].iloc[-1]
    )
    saved = {f.path for r in by_type["files"] for f in r.files.files}
    assert {"report.html", "report.md"} <= saved


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


def test_job_writes_report_and_logs_it_to_wandb(tmp_path: Path, wandb_env: None) -> None:
    with FakeOpenAI(reply) as server:
        run_dir = job(server, tmp_path / "results", *SMALL, "logger=wandb")
    assert (run_dir / "report.html").is_file()
    assert (run_dir / "report_figures" / "accuracy_vs_compute.png").is_file()
    check_wandb_report(run_dir)


@pytest.mark.slow
def test_embedded_model_job_report(results: Path, wandb_env: None) -> None:
    """The default job (embedded SmolLM2), shrunk: its folder gets the report, W&B gets it."""
    run_dir = ttcbench.run(
        [f"results_dir={results}", "task.limit=2", "budget.values=[1,2]",
         "sampling.max_tokens=48", "logger=wandb"]
    )  # fmt: skip
    html = (run_dir / "report.html").read_text()
    assert "smollm2" in html and "2 problems" in html
    assert "model-derived difficulty: it needs pools of 4" in html.lower()
    check_wandb_report(run_dir)


def test_a_one_budget_run_gives_notes_not_failures(sweep: Path, tmp_path: Path) -> None:
    """One budget, one sample per problem: no pool, no curve to fit; the report says so."""
    result = build_report([sweep / "arithmetic/large"], tmp_path, fit_resamples=0)
    markdown = result.markdown.read_text()
    assert "no pool of two or more samples per problem" in markdown
    assert "needs pools of 4 or more samples" in markdown
    assert (result.tables["fits"]["budgets"] == 1).all()  # one point: nothing is fitted
    assert "| majority_vote | yes | 1 | 8 | 0 |" in markdown
