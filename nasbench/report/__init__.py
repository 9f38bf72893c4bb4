"""Comparison reports, regenerated from the store (never edited by hand).

Writes ``results.md`` (per protocol, data set and search space a main table that fits a
screen, like the survey's tables: method, strategy class, test error with its spread and 95%
interval, the difference from random architectures and whether seeds tell it apart, params,
FLOPs, search cost, beside the published figures of the same data set and setting;
constrained variants under their method with short labels and a legend; search details;
predicted latency per device in tables of its own; the trade-off of every constrained run's
exact costs against its error, with ``tradeoff.csv``), ``results.csv`` (the same, machine-readable) and ``runs.csv`` (every finished
run with its provenance, so any row can be traced and reproduced). Language models (runs on the
recurrent-cell spaces) are judged by perplexity in tables of their own, a section of
``results.md`` and ``results_language_model.csv``, beside the published PTB figures; every image
table, figure and chart leaves them out, so accuracy and perplexity never share one.

Beside them: ``anytime.csv`` (black-box methods' best search-validation accuracy after each
trained candidate, per seed) with one figure per results section,
``anytime_<protocol>_<hash>_<data>.png`` (named after the section so a second protocol adds a
file instead of renaming one), ``supernet_history.csv`` (the supernet methods' per-epoch
records), ``controller_history.csv`` (the RL controllers' reward curves, per update) and,
once ``nasbench rank`` has stored some, ``rankings.csv`` (the ranking quality of weight
sharing, also a section of ``results.md``). Figures are written without metadata that
changes between runs, so regenerating an unchanged store gives the same bytes.

One module per section: ``results`` (the summary and its statistics, and the published figures,
which ``baselines/comparisons.csv`` pairs with a method, space and setting), ``tables`` (its
Markdown), ``language_model`` (the language models' summary and Markdown, on the same helpers), ``labels`` (short words for variants, data sets and titles), ``drawings`` (each run's
architecture drawn as SVG in ``architectures/``), ``site`` (the web report, ``site/``), ``runs``
(the runs as read and ``runs.csv``), ``latency`` (the cost tables' predicted latency per run, and
counts on a run's protocol), ``tradeoff`` (every constrained run's costs and error beside its
method's unconstrained ones), ``anytime``, ``histories`` (supernet and controller), ``rankings``,
``cost_tables``; ``write`` puts them together. The report reads the store, the cost tables
and ``baselines/`` only: never the strategy registry.
"""
from nasbench.report.anytime import anytime_trajectories, load_trials, mean_over_seeds
from nasbench.report.language_model import summarise_language_model
from nasbench.report.results import summarise
from nasbench.report.runs import load_runs
from nasbench.report.write import generate

__all__ = ["anytime_trajectories", "generate", "load_runs", "load_trials", "mean_over_seeds", "summarise",
           "summarise_language_model"]
