"""The report's file formats: CSV (tidy), XLSX and PDF, all drawn from one `Report`.

Each writer is deterministic: no clock, no random id, no dictionary order it does not set
itself, so the same report gives the same bytes.
"""

import csv
import io
from datetime import datetime, time, timedelta

from reports.metrics import COUNT, DAYS, KAPPA, METRICS, RATE
from reports.report import Report, n_text, value_text

CSV_HEADER = ["period_start", "period_end", "group_type", "group", "metric", "value", "n"]
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(text: str) -> str:
    """A text cell no spreadsheet will run: a leading quote before a formula character."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for period, group, metric, c in report.rows():
        writer.writerow([
            period.start.isoformat(), period.end.isoformat(), group.type, inert(group.name),
            metric.slug, value_text(metric, c), n_text(c),
        ])
    return out.getvalue().encode("utf-8")


# --- XLSX ---------------------------------------------------------------------------------
# XlsxWriter in constant_memory mode: each row goes to a temporary file as it is written,
# so memory stays flat however many groups and months; it writes numbers with formats,
# frozen panes and autofilters in that mode, and with a fixed creation date its files are
# byte-for-byte repeatable (its zip entries carry a fixed timestamp). openpyxl's write-only
# mode would do as well, but is slower and needs lxml for the same memory profile.

XLSX_SHEETS = ("Summary", "By month", "By supervisor", "By therapist", "Definitions")


def xlsx_bytes(report: Report) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False,
                                     "strings_to_formulas": False, "strings_to_urls": False})
    # A document date fixed by the filters (the day after the period), never the clock: the
    # same data and filters give the same bytes whenever the file is made.
    created = datetime.combine(report.filters.period.end + timedelta(days=1), time.min)
    book.set_properties({"title": "Alliance report", "created": created,
                         "author": "rupture-log", "comments": report.filters.describe()})
    fmt = {
        "head": book.add_format({"bold": True, "bottom": 1}),
        COUNT: book.add_format({"num_format": "0"}),
        RATE: book.add_format({"num_format": "0.0%"}),
        DAYS: book.add_format({"num_format": "0.0"}),
        KAPPA: book.add_format({"num_format": "0.0000"}),
        "text": book.add_format({}),
        "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
    }
    whole_rows = [(report.whole, g) for g in report.groups if g.type == report.groups[0].type]
    _table_sheet(book, "Summary", fmt, report, whole_rows[:1])
    _table_sheet(book, "By month", fmt, report, [(pf, report.groups[0]) for pf in report.months])
    for title, kind in (("By supervisor", "supervisor"), ("By therapist", "therapist")):
        rows = [(pf, g) for pf in report.periods for g in report.groups[1:] if g.type == kind]
        _table_sheet(book, title, fmt, report, rows)
    _definitions_sheet(book, fmt)
    book.close()
    return out.getvalue()


def _table_sheet(book, title, fmt, report, rows):
    sheet = book.add_worksheet(title)
    head = ["period_start", "period_end", "group_type", "group"]
    for metric in METRICS:
        head += [metric.slug, f"{metric.slug}_n"]
    sheet.freeze_panes(1, 4)
    for col, text in enumerate(head):
        sheet.write_string(0, col, text, fmt["head"])
    sheet.set_column(0, 1, 11)
    sheet.set_column(2, 3, 16)
    for r, (pf, group) in enumerate(rows, start=1):
        sheet.write_string(r, 0, pf.period.start.isoformat())
        sheet.write_string(r, 1, pf.period.end.isoformat())
        sheet.write_string(r, 2, group.type)
        sheet.write_string(r, 3, inert(group.name))
        for i, metric in enumerate(METRICS):
            c = pf.cells[group][metric.slug]
            col = 4 + 2 * i
            if c.value_hidden:
                sheet.write_string(r, col, c.value_mark)
            elif c.value is not None:
                sheet.write_number(r, col, c.value, fmt[metric.kind])
            if c.n_hidden:
                sheet.write_string(r, col + 1, c.n_mark)
            else:
                sheet.write_number(r, col + 1, c.n, fmt[COUNT])
    if not rows:
        sheet.write_string(1, 0, "No rows: choose this grouping in the report's filters.")
    sheet.autofilter(0, 0, max(len(rows), 1), len(head) - 1)


def _definitions_sheet(book, fmt):
    sheet = book.add_worksheet("Definitions")
    sheet.freeze_panes(1, 0)
    for col, text in enumerate(("metric", "label", "kind", "definition")):
        sheet.write_string(0, col, text, fmt["head"])
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 1, 32)
    sheet.set_column(3, 3, 90)
    for r, metric in enumerate(METRICS, start=1):
        sheet.write_string(r, 0, metric.slug)
        sheet.write_string(r, 1, metric.label)
        sheet.write_string(r, 2, metric.kind)
        sheet.write_string(r, 3, metric.definition, fmt["wrap"])
    sheet.autofilter(0, 0, len(METRICS), 3)


# --- PDF ----------------------------------------------------------------------------------
# ReportLab (pure-Python wheels) with `invariant`: fixed document id and dates, so the
# same report gives the same bytes.

PDF_SECTION_COLUMNS = 5  # metrics per table, so that each fits a landscape page


def pdf_bytes(report: Report, *, clinic: str) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from reports.metrics import METRICS

    styles = getSampleStyleSheet()
    out = io.BytesIO()
    from django.utils import timezone

    made = f"{timezone.localtime(report.as_of):%Y-%m-%d %H:%M %Z}".strip()
    doc = SimpleDocTemplate(
        out, pagesize=landscape(A4), invariant=1, title="Alliance report", author="rupture-log",
        subject=f"{report.filters.period.start} to {report.filters.period.end}", creator="rupture-log",
        leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
    )

    def para(text, style="BodyText", *, markup=False):
        return Paragraph(text if markup else _escape(text), styles[style])

    story = [
        Spacer(1, 30 * mm), para("Alliance report", "Title"), para(clinic, "Heading2"),
        para(f"Period: {report.filters.period.start:%d %b %Y} to {report.filters.period.end:%d %b %Y}, "
             f"in the clinic's time zone", "Heading3"),
        para(f"Covers {report.scope_label}; {report.filters.describe()}."),
        para(f"Made for {report.viewer} ({report.viewer_role}); figures as of {made}."),
        Spacer(1, 8 * mm),
        para("Counts only: no case code, client identifier or clinical text. More ruptures logged often "
             "means more noticed, not a worse alliance; therapists are listed by name, never ranked."),
        PageBreak(),
    ]
    style = TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8), ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])
    sections = [METRICS[i:i + PDF_SECTION_COLUMNS] for i in range(0, len(METRICS), PDF_SECTION_COLUMNS)]
    story.append(para("The whole period", "Heading1"))
    for metrics in sections:
        rows = [["Group", *(m.label for m in metrics)]]
        for group in report.groups:
            rows.append([_group_label(group), *(_pdf_cell(m, report.whole.cells[group][m.slug]) for m in metrics)])
        story += [Table(rows, style=style, repeatRows=1, hAlign="LEFT"), Spacer(1, 5 * mm)]
    story += [PageBreak(), para("Each month (the first row of the table above)", "Heading1")]
    total = report.groups[0]
    for metrics in sections:
        rows = [["Month", *(m.label for m in metrics)]]
        for pf in report.months:
            rows.append([f"{pf.period.start:%b %Y}", *(_pdf_cell(m, pf.cells[total][m.slug]) for m in metrics)])
        story += [Table(rows, style=style, repeatRows=1, hAlign="LEFT"), Spacer(1, 5 * mm)]
    story += [para("Monthly trend: ruptures per held session", "Heading2"), _trend_chart(report),
              para("A month without a bar had no session held, or a count too small to show.")]
    story += [PageBreak(), para("How these are counted", "Heading1")]
    for metric in METRICS:
        story.append(para(f"<b>{_escape(metric.label)}</b> ({metric.slug}): {_escape(metric.definition)}",
                          markup=True))
    story.append(para(_suppression_note(report)))

    def footer(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(document.pagesize[0] - 15 * mm, 8 * mm, f"Page {document.page}")
        canvas.drawString(15 * mm, 8 * mm, f"Alliance report, {report.filters.period.start} to "
                                           f"{report.filters.period.end}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _escape(text):
    # ReportLab paragraphs read markup: every text from data is escaped.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _group_label(group):
    return group.name if group.type != "clinic" else "clinic"


def _pdf_cell(metric, c):
    value = value_text(metric, c)
    if not c.value_hidden and c.value is not None and metric.kind == RATE:
        value = f"{c.value:.1%}"
    return f"{value or '-'} (n={n_text(c)})"


def _suppression_note(report):
    m = report.filters.min_cell
    if m <= 1:
        return "No small-cell suppression was applied (the operator turned it off)."
    return (f"Privacy of small numbers: any count from 1 to {m - 1} is shown as <{m}, and a rate or "
            f"median built on such a count is hidden too. Where a total is shown, a hidden count could "
            f"still be worked out by subtraction (the first row of a table is the sum of the rows below "
            f"it, the whole period the sum of its months, the kinds and the repair statuses add up to "
            f"the ruptures, and the endings to the clients discharged): there the smallest other count that adds "
            f"up to the same total is hidden as well, shown as x because it may be of any size, and so is "
            f"any rate built on it, until no hidden count can be worked out that way; the totals stay.")


def _trend_chart(report):
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors

    total = report.groups[0]
    values, labels = [], []
    for pf in report.months:
        c = pf.cells[total]["ruptures_per_held_session"]
        values.append(0 if c.value_hidden or c.value is None else round(c.value, 4))
        labels.append(f"{pf.period.start:%b %y}")
    drawing = Drawing(640, 180)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40, 30, 580, 130
    chart.data = [values or [0]]
    chart.categoryAxis.categoryNames = labels or [""]
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = colors.HexColor("#3b6ea5")
    drawing.add(chart)
    return drawing
