"""Students' HTML in what the staff open: nothing a student wrote runs in a TA's browser.

nbgrader's formgrader shows an autograded notebook to a TA (logged in, able to change every grade)
and the feedback page goes back to students; both are nbconvert's ``HTMLExporter``. Its
``sanitize_html`` option does not reach markdown cells there (nbgrader's ``formgrade`` and
``feedback`` templates render them without it), and nbconvert's markdown keeps raw HTML and
``javascript:`` links. So ``SanitizeHTML``, an exporter preprocessor set in ``autograder.course.config``
(``c.HTMLExporter.preprocessors``, which both read), cleans the notebook before any template sees it:

* markdown cells are rendered by nbconvert's own ``markdown2html`` and cleaned by an allow-list
  (``bleach``: text formatting, lists, tables, headings, links to http/https/mailto, images from
  http/https/data or the cell's attachments; no attributes that run code, no ``style``, no
  ``class``), then stand as one HTML block that the template's second markdown pass leaves as it is;
* raw cells and ``text/html`` and ``text/markdown`` outputs are cleaned the same way;
* JavaScript and widget outputs are dropped (their ``text/plain`` stays), SVG outputs are shown
  as images (``<img>`` never runs a script), and the notebook's widget state is removed.
"""
from __future__ import annotations

import base64
import re

import bleach
from nbconvert.filters.markdown import markdown2html
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div",
        "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre",
        "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "tr", "u", "ul", "var"}
PROTOCOLS = {"http", "https", "mailto", "data"}
DROP = ("application/javascript", "text/javascript", "application/vnd.jupyter.widget-view+json",
        "application/vnd.jupyter.widget-state+json")


def _attribute(tag: str, name: str, value: str) -> bool:
    if name in ("title", "alt"):
        return True
    if tag == "a" and name == "href":
        return not value.strip().lower().startswith("data:")
    if tag == "img" and name in ("src", "width", "height"):
        return name != "src" or not value.strip().lower().startswith("data:") or \
            value.strip().lower().startswith("data:image/")
    if tag in ("td", "th") and name in ("colspan", "rowspan", "align"):
        return True
    return tag == "ol" and name == "start"


CLEANER = bleach.sanitizer.Cleaner(tags=TAGS, attributes=_attribute, protocols=PROTOCOLS, strip=False,
                                   strip_comments=True)


def clean(html: str) -> str:
    """``html`` with only the allow-listed tags and attributes (anything else shows as text)."""
    return CLEANER.clean(html)


def one_block(html: str) -> str:
    """``html`` as one Markdown HTML block (no blank line, so a second markdown pass keeps it whole)."""
    html = re.sub(r"<pre\b.*?</pre>", lambda m: m.group(0).replace("\n", "&#10;"), html, flags=re.S)
    html = re.sub(r"\n\s*\n+", "\n", html).strip()
    return f"<div>\n{html}\n</div>" if html else ""


def _attachments(html: str, attachments: dict) -> str:
    """``attachment:NAME`` images as data URLs (the template's own lookup no longer sees them)."""
    def inline(m):
        bundle = attachments.get(m.group(2)) or {}
        for mime, data in bundle.items():
            if mime.startswith("image/") and mime != "image/svg+xml" and isinstance(data, str):
                return f'{m.group(1)}"data:{mime};base64,{data.strip()}"'
        return f'{m.group(1)}""'
    return re.sub(r'(src=)"attachment:([^"]*)"', inline, html)


def markdown(source: str, attachments: dict | None = None) -> str:
    return one_block(clean(_attachments(markdown2html(source), attachments or {})))


class SanitizeHTML(Preprocessor):
    """An exporter preprocessor: see the module's docstring."""
    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = markdown(cell.source, cell.get("attachments"))
            cell.pop("attachments", None)
        elif cell.cell_type == "raw":
            cell.source = clean(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            for mime in DROP:
                data.pop(mime, None)
            if "text/markdown" in data:
                data["text/html"] = markdown(data.pop("text/markdown"))
            if "text/html" in data:
                html = data["text/html"]
                data["text/html"] = clean("".join(html) if isinstance(html, list) else html)
            if "image/svg+xml" in data:
                svg = data.pop("image/svg+xml")
                svg = "".join(svg) if isinstance(svg, list) else svg
                if "text/html" not in data:
                    data["text/html"] = f'<img src="data:image/svg+xml;base64,' \
                                        f'{base64.b64encode(svg.encode()).decode()}">'
            if not data:
                data["text/plain"] = ""
        return cell, resources
