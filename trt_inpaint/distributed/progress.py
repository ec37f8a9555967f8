"""The driver's progress line: files done of the total, failed and skipped so far, images per second."""

from __future__ import annotations

import sys
from collections import Counter

from trt_inpaint.runtime.api import FileResult


class FileBar:
    """A tqdm bar on stderr fed one ``FileResult`` at a time (``update``); a no-op when disabled."""

    def __init__(self, total: int, enabled: bool, desc: str = "files"):
        self.count: Counter = Counter()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", desc=desc, file=sys.stderr)

    def update(self, result: FileResult) -> None:
        self.count[result.status] += 1
        if self.bar is not None:
            self.bar.set_postfix(failed=self.count["failed"], skipped=self.count["skipped"], refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
