"""Printing a report to PDF with headless Chromium (``--print-to-pdf``), where it is installed."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
PDF_TIMEOUT_S = 60


def write_pdf(html_path: Path, pdf_path: Path) -> Path | None:
    """Print the report with headless Chromium when it is installed; None otherwise."""
    binary = next((b for b in (shutil.which(n) for n in CHROMIUM) if b), None)
    if binary is None:
        logger.info("no Chromium found: the report is HTML only (install chromium for a PDF)")
        return None
    with tempfile.TemporaryDirectory(prefix="clinic-report-") as profile:
        # Chromium's sandbox cannot run as root; anywhere else (the service's user, a technician) it stays on.
        sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
        cmd = [
            binary,
            "--headless",
            *sandbox,
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=PDF_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            logger.warning("Chromium could not print the PDF (%s); the HTML report stands", exc)
            pdf_path.unlink(missing_ok=True)  # whatever it wrote before failing
            return None
    if not pdf_path.is_file():
        return None
    pdf_path.chmod(0o600)
    return pdf_path
