"""Stack walker, symbolizer and stitched trap reports.

`capture` is the runtime's hook after a trap; `Walker` also walks a suspended
continuation from its saved context; `report` renders text (rich) and JSON.
"""

from .capture import capture
from .model import (EXHAUSTION, HOST_ERROR, TRAP, UNCAUGHT_EXCEPTION, UNHANDLED_SUSPENSION,
                    Backtrace, Frame, ResumeSite, Stack)
from .report import print_text, render_json, render_text
from .walker import Walker

__all__ = ["capture", "Walker", "Backtrace", "Frame", "ResumeSite", "Stack", "print_text",
           "render_json", "render_text", "TRAP", "EXHAUSTION", "UNHANDLED_SUSPENSION",
           "UNCAUGHT_EXCEPTION", "HOST_ERROR"]
