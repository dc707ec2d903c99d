"""fairseq-generate output -> the plain-text hypotheses (its D- lines) in the order of the test file.

fairseq-generate prints results in batch order; scorers need line i to be the output for input line i. Every id
0..N-1 must be present exactly once: a missing one (an input fairseq skipped) is an error, not a silent shift.
"""
import argparse
import re
import sys

D_LINE = re.compile(r"^D-(\d+)\t[^\t]*\t?(.*)$")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generate_output", help="what fairseq-generate printed")
    p.add_argument("--expect-lines-of", metavar="FILE",
                   help="the test input: one hypothesis per line of it is expected")
    args = p.parse_args(argv)
    hyps = {}
    with open(args.generate_output, encoding="utf-8") as f:
        for line in f:
            m = D_LINE.match(line.rstrip("\n"))
            if m:
                hyps[int(m.group(1))] = m.group(2)
    missing = sorted(set(range(len(hyps))) - set(hyps))
    if not hyps or missing or max(hyps) != len(hyps) - 1:
        p.exit(2, f"hypotheses: error: {args.generate_output}: {len(hyps)} D- lines, ids not 0..{len(hyps) - 1} "
                  f"(missing e.g. {missing[:5] or [len(hyps)]}); did fairseq-generate skip inputs?\n")
    if args.expect_lines_of:
        with open(args.expect_lines_of, encoding="utf-8") as f:
            expected = sum(1 for _ in f)
        if expected != len(hyps):
            p.exit(2, f"hypotheses: error: {len(hyps)} hypotheses for the {expected} lines of {args.expect_lines_of}\n")
    sys.stdout.writelines(hyps[i] + "\n" for i in range(len(hyps)))


if __name__ == "__main__":
    main()
