# Session 2026-11-26d call 18: run 49 gave dense at 128K 734 us in the six-length benchmark,
# against 704 in run 48 (three lengths, same build). Base (716522b) / new (5e658f5) / base /
# new on the six lengths.
