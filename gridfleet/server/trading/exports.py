"""CSV (streamed) and XLSX exports of filtered querysets: every matching row, decimals as exact strings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit (minus the header row)

Column = tuple[str, Callable[[Any], Any]]
"""An export column: header and a function of the model instance."""


def decimal_str(value: Decimal | None) -> str:
    """Return ``value`` as an exact plain string without trailing zeros (``"0.002"``, ``"100"``); ``""`` for None."""
    if value is None:
        return ""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def cell(value: Any) -> str:
    """Return one export cell as text: decimals exact, datetimes ISO (UTC), JSON as JSON, None empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def ms_iso(ms: int) -> str:
    """Return Unix milliseconds as an ISO-8601 UTC string."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rows(queryset: QuerySet[Any], columns: Sequence[Column]) -> Iterator[list[str]]:
    yield [name for name, _ in columns]
    for obj in queryset.iterator(chunk_size=2000):
        yield [cell(get(obj)) for _, get in columns]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _filename(basename: str, ext: str) -> str:
    return f"{basename}-{datetime.now(tz=UTC):%Y%m%d-%H%M%S}.{ext}"


def csv_response(queryset: QuerySet[Model], columns: Sequence[Column], basename: str) -> StreamingHttpResponse:
    """Stream every row of ``queryset`` as CSV (UTF-8, header row first)."""
    writer = csv.writer(_Echo())
    body: Iterable[str] = (writer.writerow(row) for row in _rows(queryset, columns))
    response = StreamingHttpResponse(body, content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{_filename(basename, "csv")}"'
    return response


def xlsx_response(queryset: QuerySet[Model], columns: Sequence[Column], basename: str) -> HttpResponse:
    """Return every row of ``queryset`` as an XLSX workbook (one sheet; values as text so decimals stay exact)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(basename[:31])
    for count, row in enumerate(_rows(queryset, columns)):
        if count > XLSX_MAX_ROWS:
            break
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{_filename(basename, "xlsx")}"'
    return response


class CSVRenderer(BaseRenderer):
    """Declares ``?format=csv`` (the list views answer it with :func:`csv_response`)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        """Render error bodies and other non-export data as a one-column CSV."""
        return f"detail\n{json.dumps(data, default=str)}\n".encode()


class XLSXRenderer(BaseRenderer):
    """Declares ``?format=xlsx`` (the list views answer it with :func:`xlsx_response`)."""

    media_type = XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        """Render error bodies as JSON text (an export itself never goes through a renderer)."""
        return json.dumps(data, default=str).encode()


class ExportableListMixin:
    """A list view that also answers ``?format=csv|xlsx`` with every filtered row (``export_columns``).

    Mix into a DRF list view or viewset (before the DRF base class); set ``export_columns`` and
    ``export_basename``. The filters are evaluated before the download starts, so a bad filter value is a 400,
    never an error in the middle of a streamed body.
    """

    export_basename = "rows"
    export_columns: Sequence[Column] = ()

    def get_renderers(self) -> list[BaseRenderer]:
        """JSON (and the browsable API); the list also answers csv and xlsx."""
        from rest_framework.settings import api_settings

        renderers = [r() for r in api_settings.DEFAULT_RENDERER_CLASSES]
        if getattr(self, "action", "list") == "list":  # plain list views have no ``action``
            renderers += [CSVRenderer(), XLSXRenderer()]
        return renderers

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """A page of rows, or every filtered row as CSV/XLSX."""
        fmt = getattr(request.accepted_renderer, "format", None)
        if fmt in ("csv", "xlsx"):
            view: Any = self
            queryset = view.filter_queryset(view.get_queryset())
            queryset.exists()  # a bad filter value fails here (a 400), not in the middle of a streamed body
            if fmt == "csv":
                return csv_response(queryset, self.export_columns, self.export_basename)
            return xlsx_response(queryset, self.export_columns, self.export_basename)
        return super().list(request, *args, **kwargs)  # type: ignore[misc]
