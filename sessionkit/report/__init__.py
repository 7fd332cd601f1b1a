"""One self-contained HTML page about a dataset, meant to be mailed around.

The page opens with a headline (the period covered, its totals against the period of the same
length before it, the three biggest movers) and a table of contents; then a section for each
kind of data the dataset has, with charts (SVG, embedded as ``data:`` images) and tables ranked
by what an analyst looks for, each with its full version folded; then sample transcripts,
folded. It loads nothing from anywhere: no script at all, no external CSS, fonts or images,
and a Content-Security-Policy that forbids them, so it opens the same offline, in a mail client
or in a browser.
"""

from sessionkit.report._page import report_html, write_report

__all__ = ["report_html", "write_report"]
