"""Keeps the headlines worth learning from: at least --min-words words and
not a question. Reads and writes JSONL records {"text": ...}, one per line,
and writes what it kept and dropped to a JSON file.

Usage: filter_headlines.py [--min-words N] IN.jsonl OUT.jsonl STATS.json
"""

import argparse
import json
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-words", type=int, default=6)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("stats")
    args = ap.parse_args()

    kept = short = questions = 0
    with open(args.src, encoding="utf-8") as src, open(args.dst, "w", encoding="utf-8") as dst:
        for n, line in enumerate(src, 1):
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError) as e:
                print(f"{args.src}:{n}: not a {{\"text\": ...}} record: {e}", file=sys.stderr)
                return 1
            if len(text.split()) < args.min_words:
                short += 1
            elif text.rstrip().endswith("?"):
                questions += 1
            else:
                kept += 1
                dst.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    stats = {"kept": kept, "dropped_short": short, "dropped_questions": questions, "min_words": args.min_words}
    with open(args.stats, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"kept {kept} headlines, dropped {short} short and {questions} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
