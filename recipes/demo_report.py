"""The demo's report: WORK/report.md (every stage's numbers) and WORK/loss.png (training losses, curriculum phases
shaded), from what ``recipes/demo.sh`` left in WORK. The Markdown is printed as well."""
import argparse
import os
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", required=True, metavar="DIR", help="the demo's work directory")
    args = p.parse_args(argv)
    if not os.path.isdir(args.work):
        p.exit(2, f"demo_report: error: {args.work}: no such directory\n")

    from fairseq_ssr.demo.plot import plot_losses
    from fairseq_ssr.demo.report import load_runs, render

    logs = load_runs(args.work)
    try:
        text = render(args.work, logs)
    except (OSError, ValueError, KeyError) as e:
        p.exit(2, f"demo_report: error: {e}\n")
    panels = [(title, {name: logs[name] for name in names if name in logs}) for title, names in (
        ("T5 stand-ins, from scratch", ("generator", "student-copy", "student")),
        ("continual pre-training of the student", ("SSR", "T5-cont")),
        ("GEC fine-tuning", ("GEC from SSR", "GEC from T5-cont")),
    )]
    panels = [(title, runs) for title, runs in panels if runs]
    figure = os.path.join(args.work, "loss.png")
    if panels:
        ssr = logs.get("SSR")
        plot_losses(panels, figure, phases=ssr.phases if ssr else None,
                    phases_panel=next((k for k, (_, runs) in enumerate(panels) if "SSR" in runs), 0))
        text += f"\nLoss curves: `{figure}` (shaded: the curriculum phases of the SSR run).\n"
    with open(os.path.join(args.work, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
