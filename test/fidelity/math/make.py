# Runs lm-evaluation-harness 0.4.13's own hendrycks_math functions on worked examples: python make.py > math.json
import json, sys
import importlib.util, types
_d = types.ModuleType("datasets"); _d.Dataset = object; sys.modules.setdefault("datasets", _d)  # utils.py imports it only for a type
SRC = "/tmp/tfenv/lib/python3.11/site-packages/lm_eval/tasks/hendrycks_math/utils.py"
spec = importlib.util.spec_from_file_location("hm_utils", SRC); U = importlib.util.module_from_spec(spec); spec.loader.exec_module(U)
responses = [
  "So the answer is $\\boxed{\\frac{1}{2}}$.",
  "First \\boxed{3} then finally \\boxed{\\dfrac{3}{4}}",
  "The answer is \\boxed 5$ and more",
  "no box here, 42",
  "\\fbox{7} done",
  "unbalanced \\boxed{\\frac{1}{2}",
  "\\boxed{10\\%}",
  "\\boxed{x = 3}",
  "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}",
  "\\boxed{90^\\circ}",
  "\\boxed{.5}",
  "\\boxed{ 0.5 }",
  "\\boxed{1/2}",
  "\\boxed{a/b}",
  "\\boxed{\\sqrt3}",
  "\\boxed{2\\sqrt{2}}",
  "\\boxed{\\frac12}",
  "\\boxed{\\frac1{72}}",
  "\\boxed{5 \\text{ cm}}",
  "\\boxed{\\$18.90}",
  "\\boxed{\\text{(C)}}",
  "\\boxed{\\frac}",
  "\\boxed{\\sqrt}",
  "\\boxed{3\\text{ a}\\text{ b}}",
  "\\boxed{\\tfrac{4}{3}}",
  "\\boxed{k=\\infty}",
  "\\boxed{033}",
  "\\boxed{}",
  "\\boxed{1,\\!000}",
  "\\boxed{\\frac{a}b}",
  "\\boxed{-1/2}",
  "\\boxed{3/4/5}",
]
answers = ["\\frac{1}{2}", "\\frac34", "5", "42", "7", "\\frac{1}{2}", "10", "3", "\\left( 3, \\frac{\\pi}{2} \\right)", "90", "\\frac{1}{2}", "\\frac{1}{2}", "\\frac{1}{2}", "\\frac{a}{b}", "\\sqrt{3}", "2\\sqrt2", "\\frac{1}{2}", "\\frac{1}{72}", "5", "18.90", "\\text{(C)}", "\\frac", "\\sqrt", "3", "\\frac43", "\\infty", "33", "", "1000", "\\frac{a}{b}", "-\\frac{1}{2}", "3/4/5"]
def run(f, *a):
    try: return {"value": f(*a)}
    except Exception as e: return {"raises": type(e).__name__}
out = []
for r, a in zip(responses, answers):
    boxed = U.last_boxed_only_string(r)
    content = run(U.remove_boxed, boxed) if boxed is not None else {"value": None}
    got = content.get("value")
    out.append({
      "response": r, "answer": a,
      "last_boxed_only_string": boxed,
      "remove_boxed": content,
      "strip_string": run(U.strip_string, got) if got is not None else None,
      "is_equiv": U.is_equiv(got, a) if got is not None else False,
    })
json.dump({"note": "made by test/fidelity/math/make.py (run outside the project) from lm-eval 0.4.13's own lm_eval/tasks/hendrycks_math/utils.py (pip wheel lm_eval==0.4.13, Python 3.11): last_boxed_only_string, remove_boxed (or the exception it raises), strip_string of the boxed content (or the exception) and is_equiv(content, answer); is_equiv is false where there is no boxed content", "cases": out}, sys.stdout, indent=1, ensure_ascii=False)
