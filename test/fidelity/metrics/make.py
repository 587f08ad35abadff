# Expected metric values from the original Python code, for test/fidelity-metrics.test.ts.
# How to run it (originals, versions and commits): README.md beside this file.
# usage: python3 make.py ORIGINALS_DIR OUT_DIR [ALL_JIEBA_CASES.json]
# Every metric is called at the stack depth LongBench's eval.py calls it (<module> -> scorer ->
# metric), since rouge's recursion limit depends on it: calls below are made from module level.
import importlib
import json
import os
import random
import re
import sys
import unicodedata

ORIG, OUT = sys.argv[1], sys.argv[2]
sys.path[:0] = [ORIG + '/LongBench', ORIG + '/rouge', ORIG + '/RULER']

# LongBench's requirements.txt installs fuzzywuzzy without python-Levenshtein: hide it first.
sys.modules['Levenshtein'] = None
import eval as lb_eval  # noqa: E402  LongBench/eval.py, which imports LongBench/metrics.py
import metrics as lb  # noqa: E402
import constants as ruler  # noqa: E402  RULER scripts/eval/synthetic/constants.py
import difflib  # noqa: E402
import jieba  # noqa: E402
from fuzzywuzzy import fuzz as fuzz_difflib  # noqa: E402
assert fuzz_difflib.SequenceMatcher is difflib.SequenceMatcher
del sys.modules['Levenshtein']
for name in ['fuzzywuzzy.fuzz', 'fuzzywuzzy.StringMatcher', 'fuzzywuzzy']:
    sys.modules.pop(name, None)
fuzz_lev = importlib.import_module('fuzzywuzzy.fuzz')
import Levenshtein  # noqa: E402
assert fuzz_lev.SequenceMatcher.__module__ == 'fuzzywuzzy.StringMatcher'
jieba.setLogLevel(60)

FIRST_LINE = ["trec", "triviaqa", "samsum", "lsht"]  # eval.py scorer's list


def score(dataset, prediction, ground_truths, all_classes):
    """eval.py scorer's body for one prediction, before its mean and round: the max over answers."""
    s = 0.
    if dataset in FIRST_LINE:
        prediction = prediction.lstrip('\n').split('\n')[0]
    for ground_truth in ground_truths:
        s = max(s, lb_eval.dataset2metric[dataset](prediction, ground_truth, all_classes=all_classes))
    return s


def code_sim_levenshtein(prediction, ground_truth):
    """metrics.code_sim_score with fuzzywuzzy on python-Levenshtein (its line choice, then fuzz.ratio)."""
    lines = prediction.lstrip('\n').split('\n')
    prediction = ""
    for line in lines:
        if ('`' not in line) and ('#' not in line) and ('//' not in line):
            prediction = line
            break
    return fuzz_lev.ratio(prediction, ground_truth) / 100


rng = random.Random(17)
SEPS = [' ', ' ', ' ', '  ', '\t', '\n', '\r\n', '\x1c', '\x1f', '\x85', '\xa0', '\u2003', '\u3000', '\ufeff', '\u200b', ', ', '. ', '! ', ' - ', '\u2014', '/']
EN = ['the', 'The', 'THE', 'a', 'A', 'an', 'An', 'cat', 'Cat', 'dog', 'apple', 'bell', "don't", "o'clock", 'e-mail',
      'U.S.', 'state-of-the-art', 'the_end', 'an_', '3', '12', '\uff11\uff12', '\u0663', '\u0969', 'x\u00b2', 'an\u00bd',
      'the\u2160', '\u0130stanbul', '\u03a3\u039f\u03a6\u0399\u0391\u03a3', 'na\u00efve', 'cafe\u0301', 'a\u0301',
      '\u00aa', 'th\u00e9', 'Stra\u00dfe', '\u1e9e', 'the\u00a0end', '\U0001d7d9', 'an\U0001d7da', '\ud55c', '\u6d77',
      'Paragraph', '1', '7', '\u6bb5\u843d3']
ZH = ['\u6211\u4eec', '\u5317\u4eac', '\u4e0a\u6d77', '\u4f1a\u8bae', '\u8ba8\u8bba', '\u4e86', '\u4ea4\u901a',
      '\u95ee\u9898', '\u7684', '\u662f', '\uff0c', '\u3002', '\u3001', '\u201c', '\u201d', '2024\u5e74', '3.5%',
      'AI', 'COVID-19', 'iPhone', 'a_b', '\uff11\uff12', '\u3400\u3401', '\U00020000', '\u9fd6', '\u00a0', ' ',
      '\u3000', '\ufeff', '\x1c', '\u6bb5\u843d', '\u5341\u4e8c', '\u6e05\u534e\u5927\u5b66', 'the', 'Cat']
CODE = ['return', ' ', '    ', 'x', 'y', '(', ')', '=', '==', 'self', '.', 'value', '+', '1', '#', '//', '`', '\n',
        '\t', 'foo_bar', '[i]', ';', '"s"', "'t'", '\u00e9', '\U0001f600', 'if', ':', 'None']


def text(vocab, lo, hi, sep=True):
    n = rng.randint(lo, hi)
    parts = []
    for _ in range(n):
        parts.append(rng.choice(vocab))
        if sep:
            parts.append(rng.choice(SEPS) if rng.random() < 0.5 else ' ')
    return ''.join(parts)


# --- LongBench metrics, each through eval.py's scorer body ---------------------------------
lb_cases = []
CLASSES = ['City', 'Number', 'Number of something', 'Individual', 'Date', 'Description', 'Definition of something',
           'Other location', 'Other number', 'Country', 'Description of something', 'Individual', '\u4f53\u80b2', '\u4f53\u80b2\u65b0\u95fb']
EDGE = {
    'narrativeqa': [  # qa_f1_score
        ('', ['']), ('', ['x']), ('x', ['']), ('   ', ['the']), ('the', ['a']), ('!!!', ['...']),
        ('The  Bronze, bell!', ['the old bronze bell']), ('A cat', ['cat']), ('an apple', ['apple an']),
        ('the-end', ['end']), ('theend', ['the end']), ("don't", ['dont']), ('the_cat', ['thecat']),
        ('the\x1ccat', ['cat']), ('the\x85cat', ['cat']), ('the\ufeffcat', ['cat']), ('the\u200bcat', ['cat']),
        ('the\u00a0cat', ['cat']), ('the\u2003cat\u3000dog', ['cat dog']), ('a\u0663 b', ['b']), ('a\uff12', ['b']),
        ('the\u00b2', ['the']), ('an\u00bd x', ['x']), ('the\u2160', ['x']), ('a\u0301', ['\u0301']), ('\u00aa a', ['\u00aa']),
        ('\u0130stanbul', ['i\u0307stanbul']), ('\u03a3\u039f\u03a6\u0399\u0391\u03a3 \u03a3', ['\u03c3\u03bf\u03c6\u03b9\u03b1\u03c2 \u03c3']),
        ('\u1e9e STRASSE', ['\u00df strasse']), ('A\u00c0 \u00e0the', ['\u00e0 the']), ('the the cat cat', ['cat']),
        ('thé a', ['thé']), ('Ångström the', ['ångström']), ('a\U0001d7d9', ['x']), ('the\U00010400', ['x']),
        ('The cat.', ['the dog', 'a cat', 'cat']), ('no', ['yes', 'No.']), ('', ['', 'x']),
    ],
    'multifieldqa_zh': [  # qa_f1_zh_score
        ('', ['']), ('\u676d\u5dde', ['\u676d\u5dde']), ('\u5728\u676d\u5dde\u3002', ['\u676d\u5dde']), ('', ['\u676d\u5dde']),
        ('\u3002\uff0c', ['\u3001']), ('iPhone 12\u624b\u673a', ['iPhone12\u624b\u673a']), ('COVID-19\u75ab\u60c5', ['covid-19']),
        ('a_b\u4e2d\u6587', ['a b']), ('\uff11\uff12\u4e2a', ['12\u4e2a']), ('\u3400\u3401\u5317\u4eac', ['\u5317\u4eac']),
        ('\U00020000\u4e0a\u6d77', ['\u4e0a\u6d77']), ('\u5317 \u4eac', ['\u5317\u4eac']), ('\u5317\u3000\u4eac', ['\u5317\u4eac']),
        ('\u5317\ufeff\u4eac', ['\u5317\u4eac']), ('The Cat\u7684', ['the cat']), ('3.5%\u589e\u957f', ['3.5%']),
        ('\u6e05\u534e\u5927\u5b66', ['\u6e05\u534e', '\u6e05\u534e\u5927\u5b66']),
    ],
    'gov_report': [  # rouge_score
        ('', ['x']), ('x', ['']), ('.', ['x']), ('...', ['a summary.']), (' . .', ['x . y']), ('x . y', [' . ']),
        ('the cat sat on the mat', ['the cat lay on the mat']), ('Bells remain. Lamps were new', ['Lamps were new. Bells remain']),
        ('a\x1cb', ['a b']), ('a\x85b', ['a b']), ('a\ufeffb', ['a b']), ('a\u00a0b. c', ['a b c']), ('3.14 is pi', ['pi is 3.14']),
        ('x', ['y', 'x', 'x y']),
    ],
    'dureader': [  # rouge_zh_score
        ('', ['\u4f1a\u8bae']), ('\u4f1a\u8bae\u8ba8\u8bba\u4e86\u4ea4\u901a', ['\u4f1a\u8bae\u8ba8\u8bba\u4e86\u4ea4\u901a']),
        ('\u6211\u4eec\u5728\u5317\u4eac\u3002\u4ed6\u4eec\u5728\u4e0a\u6d77', ['\u4ed6\u4eec\u5728\u4e0a\u6d77.\u6211\u4eec']),
        ('\u3002', ['\u3002']), ('AI\u548cCOVID-19', ['AI COVID-19']),
    ],
    'trec': [  # classification_score (all_classes = CLASSES), first line only
        ('Type: Individual', ['Individual']), ('City or Individual', ['Individual']), ('Number of something', ['Number of something']),
        ('nothing', ['City']), ('\nCity\nIndividual', ['City']), ('Number', ['Number of something']),
        ('Description of something Description', ['Description']), ('Other number Number', ['Number']),
        ('Individual Individual', ['Individual']), ('Definition of something', ['Definition of something', 'Description']),
        ('', ['City']),
    ],
    'lsht': [('\u4f53\u80b2\u65b0\u95fb', ['\u4f53\u80b2']), ('\u4f53\u80b2', ['\u4f53\u80b2\u65b0\u95fb']), ('\u4f53\u80b2\u4f53\u80b2\u65b0\u95fb', ['\u4f53\u80b2\u65b0\u95fb'])],
    'passage_count': [  # count_score
        ('', ['3']), ('none', ['3']), ('3', ['3']), ('3 or 4', ['3']), ('There are 3 unique paragraphs: 3', ['3']),
        ('\uff13', ['3']), ('\uff13 and 3', ['3']), ('\u0663', ['3']), ('03', ['3']), ('x\u00b3', ['3']), ('3\u00b3', ['3']),
        ('12\uff13', ['12']), ('\U0001d7d1', ['3']), ('1,234', ['1234']), ('2 3', ['3', '2']),
    ],
    'passage_retrieval_en': [  # retrieval_score
        ('Paragraph 3', ['Paragraph 3']), ('Paragraph 3 and 13', ['Paragraph 3']), ('Paragraph \uff13', ['Paragraph 3']),
        ('Paragraph \uff13', ['Paragraph \uff13']), ('', ['Paragraph 3']), ('Paragraph 03', ['Paragraph 3']),
        ('Paragraph 1 or Paragraph 2', ['Paragraph 2', 'Paragraph 1']), ('Paragraph 7', ['The answer: Paragraph 7 (and 8)']),
    ],
    'passage_retrieval_zh': [('\u6bb53\u843d', ['\u6bb5\u843d3']), ('\u6bb5\u843d3', ['\u6bb5\u843d3']), ('\u6bb5\u843d\uff13', ['\u6bb5\u843d3'])],
    'lcc': [  # code_sim_score
        ('', ['']), ('', ['x']), ('x', ['']), ('abcd', ['abce']), ('\n# area\n    return 2 * (width + height)\n', ['    return 2 * (width + height)']),
        ('`code`\n// c\nx = 1', ['x = 1']), ('# a\n// b\n`c`', ['x']), ('\n\n\nfoo()', ['foo()']), ('a\u00e9\U0001f600b', ['a\U0001f600b']),
        ('abcdefgh', ['a']), ('ab', ['ba']), ('x' * 150 + 'y' * 100, ['y' * 100 + 'x' * 150]),
        ((' ' * 3 + 'a') * 60, [(' ' * 2 + 'a') * 80]), ('self.value = value' * 12, ['self.value = other' * 13]),
    ],
}
ALL_CLASSES = {'trec': CLASSES, 'lsht': CLASSES}  # cases.json's all_classes, for these two datasets
for dataset, cases in EDGE.items():
    for prediction, answers in cases:
        lb_cases.append({'dataset': dataset, 'prediction': prediction, 'answers': answers, 'expected': score(dataset, prediction, answers, ALL_CLASSES.get(dataset))})

# Random cases: mixed scripts, spaces, digits and punctuation, several answers.
RANDOM = [('narrativeqa', EN, 0, 12, 300), ('multifieldqa_zh', ZH, 0, 12, 200), ('triviaqa', EN, 0, 10, 80),
          ('samsum', EN, 0, 30, 100), ('gov_report', EN, 0, 40, 150), ('vcsum', ZH, 0, 40, 100),
          ('passage_count', EN, 0, 6, 100), ('passage_retrieval_en', EN, 0, 6, 60), ('passage_retrieval_zh', ZH, 0, 6, 40),
          ('trec', CLASSES + ['\n', ' or '], 0, 4, 100), ('lsht', CLASSES, 0, 3, 40), ('lcc', CODE, 0, 40, 150),
          ('repobench-p', CODE, 20, 120, 60)]
for dataset, vocab, lo, hi, n in RANDOM:
    for _ in range(n):
        prediction = text(vocab, lo, hi, sep=vocab is not CODE and vocab is not CLASSES)
        answers = []
        for _ in range(rng.randint(1, 3)):
            answers.append(text(vocab, max(lo, 1), hi, sep=vocab is not CODE))
        # Half the time the answer is one of the prediction's own numbers or classes, so scores are not all 0.
        numbers = re.findall(r'\d+', prediction) if rng.random() < 0.5 else []
        number = rng.choice(numbers) if numbers else rng.choice(['3', '12', '\uff13', '\u0663'])
        if dataset == 'passage_count':
            answers = [number] + answers[1:]
        if dataset == 'passage_retrieval_en':
            answers = ['Paragraph ' + number]
        if dataset == 'passage_retrieval_zh':
            answers = ['\u6bb5\u843d' + number]
        if dataset in ('trec', 'lsht'):
            found = [c for c in CLASSES if c in prediction and rng.random() < 0.5]
            answers = [rng.choice(found or CLASSES)]
        lb_cases.append({'dataset': dataset, 'prediction': prediction, 'answers': answers, 'expected': score(dataset, prediction, answers, ALL_CLASSES.get(dataset))})

# Long outputs: rouge over hundreds of words (and rouge's recursion limit), code lines of 200+ characters.
WORDS = ['the', 'report', 'finds', 'that', 'agency', 'costs', 'rose', 'in', '2019', 'and', 'staff', 'said', 'it', 'would', 'review', 'of', 'a', 'plan', 'to', 'cut']
for k in range(12):
    pred = ' '.join(rng.choice(WORDS) for _ in range(rng.randint(200, 700)))
    truth = ' '.join(rng.choice(WORDS) for _ in range(rng.randint(200, 500)))
    if k % 3 == 0:
        pred, truth = pred.replace(' it ', ' it. '), truth.replace(' and ', '. and ')
    lb_cases.append({'dataset': 'gov_report', 'prediction': pred, 'answers': [truth], 'expected': score('gov_report', pred, [truth], None)})
for k in range(6):
    pred = ''.join(rng.choice(ZH[:10]) for _ in range(rng.randint(150, 500)))
    truth = ''.join(rng.choice(ZH[:10]) for _ in range(rng.randint(150, 400)))
    lb_cases.append({'dataset': 'vcsum', 'prediction': pred, 'answers': [truth], 'expected': score('vcsum', pred, [truth], None)})
# The recursion limit's edge: reference "a", hypothesis "a" and m more words: _recon nests m + 2 frames.
for dataset, ms in [('gov_report', [988, 989, 990, 991]), ('vcsum', [987, 988, 989, 990])]:
    for m in ms:
        pred = 'a ' + ' '.join('h%d' % i for i in range(m))
        s = score(dataset, pred, ['a'], None)
        assert (s == 0) == (lb_eval.scorer(dataset, [pred], [['a']], None) == 0)
        lb_cases.append({'dataset': dataset, 'prediction': pred, 'answers': ['a'], 'expected': s})
for k in range(8):
    a = ''.join(rng.choice(CODE[:12]) for _ in range(rng.randint(200, 400)))
    b = ''.join(rng.choice(CODE[:12]) for _ in range(rng.randint(200, 400)))
    lb_cases.append({'dataset': 'lcc', 'prediction': a.replace('\n', ' '), 'answers': [b.replace('\n', ' ')], 'expected': score('lcc', a.replace('\n', ' '), [b.replace('\n', ' ')], None)})

# code_sim with python-Levenshtein, the named option: every lcc / repobench-p case again.
lev_cases = []
for c in lb_cases:
    if c['dataset'] in ('lcc', 'repobench-p'):
        s = 0.
        for gt in c['answers']:
            s = max(s, code_sim_levenshtein(c['prediction'], gt))
        lev_cases.append({'prediction': c['prediction'], 'answers': c['answers'], 'expected': s})

# SequenceMatcher and Levenshtein ratios themselves, autojunk included (b of 200+ items).
ratio_cases = []
for k in range(120):
    alpha = rng.choice(['ab', 'abc ', 'xyz\u00e9\U0001f600', 'abcdefghij  '])
    a = ''.join(rng.choice(alpha) for _ in range(rng.randint(0, 420)))
    b = ''.join(rng.choice(alpha) for _ in range(rng.randint(0, 420)))
    ratio_cases.append({'a': a, 'b': b, 'difflib': difflib.SequenceMatcher(None, a, b).ratio(), 'levenshtein': Levenshtein.ratio(a, b),
                        'fuzz_difflib': fuzz_difflib.ratio(a, b), 'fuzz_levenshtein': fuzz_lev.ratio(a, b)})

# RULER: postprocess_pred (evaluate.py) then string_match_all / _part (constants.py) on one sample.
def postprocess_pred(predict_str):
    # scripts/eval/evaluate.py postprocess_pred (its module runs argparse at import, so its two lines are here)
    predict_str = predict_str.strip()
    np_pattern = re.compile(r'[\x00-\x1f]')
    predict_str = np_pattern.sub('\n', predict_str).strip()
    return predict_str


ruler_cases = []
RULER_EDGE = [('', ['x']), ('  ABC-def \x01', ['abc-DEF']), ('\ufeff123', ['123']), ('\x85 7 \x85', ['7']), ('\x1c\x1d9\x1e', ['9']),
              ('\u0130stanbul', ['i\u0307stanbul', 'istanbul']), ('\u03a3\u039f\u03a6\u0399\u0391\u03a3', ['\u03c3\u03bf\u03c6\u03b9\u03b1\u03c2']),
              ('\u1e9e', ['\u00df']), ('The numbers are 123 and 456.', ['123', '456', '789']), ('\u7b54\u6848\u662f\u5317\u4eac\u548c\u4e0a\u6d77', ['\u5317\u4eac', '\u4e0a\u6d77', '\u5e7f\u5dde']),
              ('\u00a0x\u2003', ['x']), ('a\tb', ['a\nb', 'a\tb']), ('\u3000\u3000', [''])]
for _ in range(150):
    RULER_EDGE.append((text(EN, 0, 10), [text(EN, 1, 2, sep=False) for _ in range(rng.randint(1, 4))]))
for pred, refs in RULER_EDGE:
    p = postprocess_pred(pred)
    # One sample's term of each metric's sum (the metrics return only the rounded mean), checked against them.
    found = [1.0 if r.lower() in p.lower() else 0.0 for r in refs]
    all_, part = sum(found) / len(refs), max(found)
    assert ruler.string_match_all([p], [refs]) == round(all_ * 100, 2) and ruler.string_match_part([p], [refs]) == round(part * 100, 2)
    ruler_cases.append({'prediction': pred, 'refs': refs, 'postprocessed': p, 'all': all_, 'part': part})

# Quest's passkey reading (evaluation/passkey/passkey.py test_model): int(re.search(r"\d+", response).group()).
passkey_cases = []
for response in ['', 'no digits', ' 48213. Remember it', ' 0048213', '\uff14\uff18\uff12\uff11\uff13', '\u0664\u0668\u0662\u0661\u0663 is it',
                 'x\u00b248213', '\U0001d7d2\U0001d7d6', '12 then 48213', '\u096a\u096e', '123456789012345678901234']:
    m = re.search(r"\d+", response)
    passkey_cases.append({'response': response, 'value': str(int(m.group())) if m else None})



def dump(file, doc):
    """JSON with one list item a line."""
    with open(file, 'w', encoding='utf-8') as f:
        f.write('{\n')
        for k, (key, value) in enumerate(doc.items()):
            items = ',\n'.join(json.dumps(x, ensure_ascii=False, separators=(',', ':')) for x in value) if isinstance(value, list) else None
            f.write('%s:%s%s\n' % (json.dumps(key), '[\n' + items + '\n]' if items is not None else json.dumps(value, ensure_ascii=False), ',' if k < len(doc) - 1 else ''))
        f.write('}\n')


dump(OUT + '/cases.json', {'all_classes': CLASSES, 'longbench': lb_cases, 'code_sim_levenshtein': lev_cases, 'ratios': ratio_cases,
                           'ruler': ruler_cases, 'passkey': passkey_cases})


# --- jieba.cut(s, cut_all=False) on random mixed strings --------------------------------------
jrng = random.Random(20240517)
jwords = [line.split(' ')[0] for line in open(os.path.join(os.path.dirname(jieba.__file__), 'dict.txt'), encoding='utf-8')]
J_SYM = '-_.+#&%'
J_PUNCT = '\uff0c\u3002\uff01\uff1f\u3001\uff1b\uff1a\u201c\u201d\u2018\u2019\uff08\uff09\u300a\u300b\u3010\u3011,.!?;:\'"()[]{}<>/\\|@$^*=~`'
J_SPACES = [' ', '  ', '\t', '\n', '\r\n', '\r', '\u3000', '\u00a0', '\x1c', '\x1f', '\x85', '\u2003', '\ufeff', '\u200b', '\x0b', '\x0c']
J_EMOJI = ['\U0001f600', '\U0001f44d', '\U0001f389', '\u2764\ufe0f', '\U0001f468\u200d\U0001f469\u200d\U0001f467', '\U0001f1e8\U0001f1f3', '\U0001F600\U0001F3FB']
J_OTHER = ['\u00e9', '\u00df', '\u0130', '\u0131', '\u03a9', '\u0436', '\u30fc', '\u30ab\u30bf\u30ab\u30ca', '\u3072\u3089\u304c\u306a', '\ud55c\uad6d\uc5b4', '\u0663', '\u0966']
J_WORDS = ['AT&T', 'c#', 'C++', 'B\u8d85', 'T\u6064', 'iPhone', 'COVID-19', 'U\u76d8', '3.14', 'e-mail', 'a_b']


def jch(a, b):
    return chr(jrng.randint(a, b))


def jpiece():
    """Dictionary words, CJK (U+4E00-U+9FD5, above it to U+9FFF, Ext A, Ext B, compatibility), ASCII runs joined by - _ . + # & %, numbers, spaces, punctuation, full-width, emoji."""
    k = jrng.random()
    if k < 0.30: return jrng.choice(jwords)
    if k < 0.40: return ''.join(jch(0x4E00, 0x9FD5) for _ in range(jrng.randint(1, 4)))
    if k < 0.44: return jch(0x9FD6, 0x9FFF)
    if k < 0.50: return ''.join(jch(0x3400, 0x4DBF) for _ in range(jrng.randint(1, 3)))
    if k < 0.56: return ''.join(jch(0x20000, 0x2A6DF) for _ in range(jrng.randint(1, 3)))
    if k < 0.58: return jch(0xF900, 0xFAFF)
    if k < 0.68:
        alpha = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
        w = ''.join(jrng.choice(alpha) for _ in range(jrng.randint(1, 6)))
        while jrng.random() < 0.5:
            w += jrng.choice(J_SYM) + ''.join(jrng.choice(alpha) for _ in range(jrng.randint(0, 4)))
        return w
    if k < 0.72: return str(jrng.randint(0, 100000)) + jrng.choice(['', '.', '.5', '%', '.25%', '\u5e74', '\u5143'])
    if k < 0.80: return jrng.choice(J_SPACES)
    if k < 0.88: return jrng.choice(J_PUNCT)
    if k < 0.92: return ''.join(jch(0xFF10, 0xFF5A) for _ in range(jrng.randint(1, 3)))
    if k < 0.95: return jrng.choice(J_EMOJI)
    if k < 0.97: return jrng.choice(J_OTHER)
    return jrng.choice(J_WORDS)


jcases = []
for _ in range(10000):
    s = ''.join(jpiece() for _ in range(jrng.randint(1, 14)))
    jcases.append([s, list(jieba.cut(s, cut_all=False))])
dump(OUT + '/jieba.json', {'cases': jcases[:2000]})
if len(sys.argv) > 3:
    dump(sys.argv[3], {'cases': jcases})

# --- Python's character classes for every code point -----------------------------------------
def ranges(pred):
    out, start = [], None
    for cp in range(0x110000):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append([start, cp - 1])
            start = None
    if start is not None:
        out.append([start, 0x10FFFF])
    return out


d_re, w_re = re.compile(r'\d'), re.compile(r'\w')
lower = {}
for cp in range(0x110000):
    if cp < 0xD800 or cp > 0xDFFF:
        if chr(cp).lower() != chr(cp):
            lower[cp] = chr(cp).lower()
digits = ranges(lambda cp: d_re.match(chr(cp)) is not None)
json.dump({
    'python': sys.version.split()[0],
    'unidata_version': unicodedata.unidata_version,
    'isspace': ranges(lambda cp: chr(cp).isspace()),
    're_s_is_isspace': ranges(lambda cp: re.match(r'\s', chr(cp)) is not None) == ranges(lambda cp: chr(cp).isspace()),
    're_d': digits,
    're_d_values': [''.join(str(unicodedata.decimal(chr(cp))) for cp in range(a, b + 1)) for a, b in digits],
    're_w': ranges(lambda cp: w_re.match(chr(cp)) is not None),
    'unassigned': ranges(lambda cp: unicodedata.category(chr(cp)) == 'Cn'),
    'lower': lower,
}, open(OUT + '/unicode.json', 'w', encoding='utf-8'), ensure_ascii=True, separators=(',', ':'))
