# InfiniteBench's own scorers (src/compute_scores.py) on worked examples:
#   python make.py COMPUTE_SCORES_PY > cases.json
# with rouge-score 0.1.2 importable (pip install rouge-score==0.1.2). Ours: the inputs, and the
# stand-ins for what compute_scores.py imports but does not score with (tqdm, args) and for
# Hugging Face evaluate's "rouge" (its _compute: score_multi for a list of references, else
# score; use_aggregator=False keeps each pair's F-measure).
import json, sys, types
from rouge_score import rouge_scorer

class Rouge:
    def compute(self, predictions, references, use_aggregator=False):
        scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=False)
        out = []
        for ref, pred in zip(references, predictions):
            s = scorer.score_multi(ref, pred) if isinstance(ref, list) else scorer.score(ref, pred)
            out.append(s["rougeLsum"].fmeasure)
        return {"rougeLsum": out}

sys.modules["evaluate"] = types.SimpleNamespace(load=lambda name: Rouge())
sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda x: x)
sys.modules["args"] = types.SimpleNamespace(parse_args=None)
ns = {"__name__": "compute_scores"}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), ns)

cases = {
  "passkey": [("The pass key is 71432.", "71432"), ("71432", ["71432"]), ("key: 7143 2", "71432"), ("none", "71432"), ("٧١٤٣٢ then 71432", "71432")],
  "number_string": [("The sequence of digits is 3000077442.", "3000077442"), ("3000077442x", ["3000077442"]), ("30000 77442", "3000077442")],
  "kv_retrieval": [('The value is "c14cb8ba-002b".', "c14cb8ba-002b"), ("c14cb8ba-002b-43be", "c14cb8ba-002b"), ("{c14cb8ba-002b}", "c14cb8ba-002b"), ("value:c14cb8ba-002b!", "c14cb8ba-002b")],
  "longdialogue_qa_eng": [("Ace Rothstein", ["ACE", "ACE ROTHSTEIN"]), ("nicky", ["ACE"]), ("  ace: yes", ["ACE"]), ("Straße", ["STRASSE"])],
  "longbook_choice_eng": [("A. Walking Georgie", ["Walking Georgie", "A"]), ("Walking Georgie", ["Walking Georgie", "A"]), ("The answer is: B", ["x", "B"]), ("the answer is B.", ["x", "B"]), ("I think the option is", ["x", "C"]), ("maybe C or D", ["x", "C"]), ("", ["x", "A"]), ("answer:\nD", ["x", "D"]), ("so AB it is", ["x", "A"]), ("Correct: B", ["x", "A"])],
  "code_debug": [("B. repack_carchive", ["repack_carchive", "B"]), ("B: it", ["f", "B"]), ("The answer is: repack_carchive", ["repack_carchive", "B"]), ("correct option is: Option C", ["f", "C"]), ("The function with the error is:", ["f", "A"]), ("the answer is B", ["f", "B"]), ("-- answer: `D`", ["f", "D"]), ("nothing", ["f", "A"])],
  "math_find": [("88", [88]), ("It is 88.", 88), ("88.5", 88.5), ("The answer is 3 then 88", [88]), ("no number", [88]), ("٨٨", [88]), ("7.25 and 7", 7.25)],
  "longbook_qa_eng": [("Cael Bronwyn is killed instantly by a shell during the war.", ["fighting in world war 1"]), ("The war", ["fighting in the war", "war"]), ("", ["x"])],
  "longbook_sum_eng": [
    ("Jennifer is an earnest woman.\nShe makes an error.", ["Jennifer is an earnest intelligent woman who makes a serious error in judgment."]),
    ("the cat sat on the mat\nthe dog sat", ["the cat sat\non the mat with the dog"]),
    ("a b c d\nc d a b\nb a", ["a b c d a b\nd c b a"]),
    ("", ["anything"]),
    ("!!! ???", ["words here"]),
    ("Über café naïve ÉCOLE 42", ["uber cafe naive ecole 42"]),
    ("one two three", ["four five", "one three two"]),
  ],
}
out = []
for task, pairs in cases.items():
    for pred, label in pairs:
        out.append({"task": task, "prediction": pred, "label": label, "score": ns["get_score_one"](pred, label, task, "yarn-mistral")})
json.dump({"note": "made by test/fidelity/infinitebench/make.py, outside the project, from OpenBMB/InfiniteBench@88b3daa6 src/compute_scores.py's get_score_one (model_name yarn-mistral) with rouge-score 0.1.2's rougeLsum (google-research rouge/rouge_scorer.py @61ce9f0c) under Python 3.11", "cases": out}, sys.stdout, ensure_ascii=False, indent=0)
