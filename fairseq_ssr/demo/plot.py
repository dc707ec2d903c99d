"""The demo's loss figure: one panel per training stage, the curriculum phases of an SSR run shaded and labelled.

Losses are fairseq's (base 2, per target token). SSR and T5 infilling predict the same target ids (``<s_i>`` is
``<extra_id_{i-1}>``), so their curves share one axis: the gap is what the imperfect spans tell the model.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from .logs import TrainLog

_PHASE_COLOURS = ("#e8f1fa", "#fdf0e0")


def plot_losses(panels: Sequence[Tuple[str, Dict[str, TrainLog]]], out_path: str,
                phases: Optional[List[Tuple[int, int, int]]] = None, phases_panel: int = 0) -> None:
    """Write a PNG with one panel per ``(title, {run name: log})``; ``phases`` shade panel ``phases_panel``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for k, (ax, (title, runs)) in enumerate(zip(axes[0], panels)):
        if phases and k == phases_panel:
            _shade_phases(ax, phases)
        for name, log in runs.items():
            x, y = log.series("loss")
            line, = ax.plot(x, y, label=f"{name} (train)", linewidth=1.4)
            vx, vy = log.series("valid_loss", "valid")
            if vx:
                ax.plot(vx, vy, "o--", color=line.get_color(), label=f"{name} (valid)", markersize=4, linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("update")
        ax.set_ylabel("loss (bits per target token)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def _shade_phases(ax, phases):
    """A band per curriculum phase with its group's name at the top of the panel."""
    for n, (group, first, last) in enumerate(phases):
        ax.axvspan(first - 0.5, last + 0.5, color=_PHASE_COLOURS[n % 2], zorder=0)
        ax.text((first + last) / 2, 0.98, f"g{group}", transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8, color="#555555")
