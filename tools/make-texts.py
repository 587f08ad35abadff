"""The project's English texts, from the King James Bible (public domain) as Debian's
bible-kjv-text package ships it (dump it with `bible -l0 "Gen1:1-Rev22:21" > kjv.txt`).

    python3 tools/make-texts.py --kjv kjv.txt
writes datasets/haystack/kjv.txt (the default RULER/passkey haystack: the books from Genesis
on, about 1.2 MB), datasets/text/kjv-heldout.txt (the last books, held out of training: the
default perplexity text) and .data/kjv-train.txt (everything else, for tools/train-model.py).
"""
import argparse
import re

HAYSTACK_CHARS = 1_200_000
HELDOUT_FROM = "Hebrews 1"  # Hebrews to Revelation: held out of training


def chapters(path):
    title, verses = None, []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.match(r"^\s+\d+\s+(.*)$", line)
        if m:
            verses.append(m.group(1).strip())
        elif line.strip():
            if title:
                yield title, " ".join(verses)
            title, verses = line.strip(), []
    if title:
        yield title, " ".join(verses)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kjv", required=True)
    args = ap.parse_args()
    train, heldout, held = [], [], False
    for title, text in chapters(args.kjv):
        held = held or title == HELDOUT_FROM
        (heldout if held else train).append(text)
    haystack, n = [], 0
    for text in train:
        if n >= HAYSTACK_CHARS:
            break
        haystack.append(text)
        n += len(text) + 1
    open("datasets/haystack/kjv.txt", "w").write("\n".join(haystack) + "\n")
    open("datasets/text/kjv-heldout.txt", "w").write("\n".join(heldout) + "\n")
    open(".data/kjv-train.txt", "w").write("\n".join(train) + "\n")
    print(f"haystack {n} chars, held out {sum(map(len, heldout))} chars, train {sum(map(len, train))} chars")


if __name__ == "__main__":
    main()
