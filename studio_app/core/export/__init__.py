"""Export to catalog: marketplace presets, rendering from the source photo, pre-flight checks,
naming, manifest, atomic and resumable output. Qt-free; the GUI's export panel and the
``studio-catalog export`` command both call :func:`export`."""
from .exporter import ExportError, ExportReport, export, find_results
from .presets import Preset, PresetError, list_presets, load as load_preset

__all__ = ["export", "ExportReport", "ExportError", "find_results", "Preset", "PresetError",
           "load_preset", "list_presets"]
