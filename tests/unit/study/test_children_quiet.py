"""Study children do not print Lightning's per-fit banners (87 children printed 87 of each)."""

from __future__ import annotations

import logging

import lightning as L

from molpre.study.children import quiet_lightning


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_quiet_lightning_drops_the_banners_but_keeps_warnings():
    names = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")
    before = {name: logging.getLogger(name).level for name in names}
    collect = Collect()
    logging.getLogger("lightning.pytorch").addHandler(collect)
    try:
        L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
        assert any("GPU available" in m for m in collect.messages)  # Lightning's default
        collect.messages.clear()
        quiet_lightning()
        L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
        assert not any("GPU available" in m for m in collect.messages)
        assert logging.getLogger("lightning.pytorch").isEnabledFor(logging.WARNING)
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(collect)
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
