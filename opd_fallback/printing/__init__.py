"""Printing for the counter: documents as plain data, and printers that render them.

A document (OPD slip, receipt, sample labels, cash summary) is built once from
the saved record; a printer turns it into paper (ESC/POS), a PDF for the system
printer, or a text file. Printing happens after the record is committed, so a
printer failure can never lose a record: the document is kept in the spool and
can be reprinted.
"""

from opd_fallback.printing.base import Printer, PrintError, make_printer
from opd_fallback.printing.document import Block, Document
from opd_fallback.printing.settings import PrinterSettings

__all__ = ["Block", "Document", "PrintError", "Printer", "PrinterSettings", "make_printer"]
