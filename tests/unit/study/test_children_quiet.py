"""Study children do not print Lightning's per-fit banners (87 children printed 87 of each)."""

from __future__ import annotations

import logging

import lightning as L

from molpre.study.children import LIGHTNING_LOGGERS, quiet_lightning


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_quiet_lightning_drops_the_banners_while_a_child_trains():
    before = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
    collect = Collect()
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(collect)
    for name in LIGHTNING_LOGGERS:  # as Lightning sets them in a fresh worker process (a CLI
        logging.getLogger(name).setLevel(logging.NOTSET)  # test before this one quiets them)
    logger.setLevel(logging.INFO)
    try:
        L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
        assert any("GPU available" in m for m in collect.messages)  # Lightning's default
        collect.messages.clear()
        with quiet_lightning():
            L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
            assert logger.isEnabledFor(logging.WARNING)
        assert not any("GPU available" in m for m in collect.messages)
        assert logger.level == logging.INFO  # restored: an in-process study changes nothing
    finally:
        logger.removeHandler(collect)
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
