"""Runs the pinned originals' own functions (extracted by ast from git show, not retyped) on
fixed inputs, with their random draws replaced by queues of given values, and writes JSON."""
import ast, json, subprocess, sys, string, types
import numpy as np
from scipy.special import zeta

# python3 make.py OUT.json RULER_GIT_DIR QUEST_GIT_DIR: clones (or git dirs) of NVIDIA/RULER and mit-han-lab/Quest.
OUT, RULER, QUEST = sys.argv[1:4]
RULER_COMMIT = 'c3f5e3b4f87f97e048793bb510a3a6b19a46bf3a'
QUEST_COMMIT = '01c1623bf9395009520874e989e29f683203b357'

def show(repo, commit, path):
    return subprocess.check_output(['git', '-C', repo, 'show', f'{commit}:{path}'], text=True)

def load(repo, commit, path, names, ns):
    """exec the module-level functions and assignments of `path` named in `names` into ns."""
    src = show(repo, commit, path)
    found = set()
    for node in ast.parse(src).body:
        n = node.name if isinstance(node, ast.FunctionDef) else (node.targets[0].id if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) else None)
        if n in names:
            exec(ast.get_source_segment(src, node), ns); found.add(n)
    assert found == set(names), set(names) - found
    return ns

TASKS = {}
exec(show(RULER, RULER_COMMIT, 'scripts/data/synthetic/constants.py'), (c := {})); TASKS = c['TASKS']

class Queue:
    """Stands in for random / np.random: each call returns the next given value."""
    def __init__(self, **q): self.q = {k: list(v) for k, v in q.items()}
    def pop(self, k): return self.q[k].pop(0)
    def sample(self, pop, k):
        r = self.pop('sample'); assert len(r) == k and all(x in pop for x in r), (r, k); return r
    def choices(self, pop, k): r = self.pop('choices'); assert len(r) == k; return list(r)
    def randint(self, a, b): r = self.pop('randint'); assert a <= r <= b; return r
    class Random:  # random.Random(seed).shuffle: identity here; the TS side is given the order as is
        def __init__(self, seed): pass
        def shuffle(self, x): pass
    def done(self): assert all(not v for v in self.q.values()), self.q

def split(full, prefix):  # the generators' final lines: answer_prefix_index = input_text.rfind(prefix[:10])
    i = full.rfind(prefix[:10]); return {'input': full[:i], 'answer_prefix': full[i:]}

WEIRD = ["$&", "$'", "$`", "$$", "{}", "{context}", "{query}", "$1"]
out = {'ruler_commit': RULER_COMMIT, 'quest_commit': QUEST_COMMIT}

# ---- niah.py generate_input_output
def niah_case(cfg, n, keys_values, distractors, samples, sents):
    r = Queue(sample=samples)
    args = types.SimpleNamespace(num_needle_k=max(cfg['numK'], cfg['numQ']), num_needle_v=cfg['numV'], num_needle_q=cfg['numQ'],
        type_haystack=cfg['haystack'], type_needle_k='words', type_needle_v=cfg['value'], random_seed=42,
        template=TASKS['niah']['template'] + TASKS['niah']['answer_prefix'])
    gen = iter(keys_values + distractors)
    ns = {'args': args, 'random': r, 'np': np, 'generate_random': lambda t: next(gen), 'sent_tokenize': lambda text: list(sents)}
    load(RULER, RULER_COMMIT, 'scripts/data/synthetic/niah.py', ['needle', 'DEPTHS', 'generate_input_output'], ns)
    ns['haystack'] = {'noise': "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.",
                      'needle': ns['needle'], 'essay': ['w'] * 10}[cfg['haystack']]
    full, answers = ns['generate_input_output'](n)
    r.done()
    return {'config': cfg, 'n': n, 'draws': keys_values, 'distractors': distractors, 'samples': samples, 'sentences': sents,
            'full': full, 'answers': answers, **split(full, TASKS['niah']['answer_prefix'])}

ns = {'np': np}; load(RULER, RULER_COMMIT, 'scripts/data/synthetic/niah.py', ['DEPTHS'], ns)
out['depths'] = [int(d) for d in ns['DEPTHS']]
# int(len(document_sents) * (depth / 100)) for every depth and sentence counts 0..200
out['depth_index'] = [[int(count * (depth / 100)) for depth in out['depths']] for count in range(121)]
sents = ['Alpha one.', 'Beta $& two.', 'Gamma {} three?', "Delta $' four!", 'Epsilon five.', 'Zeta $$ six.', 'Eta seven.']
out['niah'] = [
    niah_case(dict(haystack='noise', value='numbers', numK=1, numV=1, numQ=1), 6, ['amber-fox', '1234567'], [], [[3], [0]], []),
    niah_case(dict(haystack='needle', value='uuids', numK=1, numV=1, numQ=1), 4, ['$&-key', "v$'"],
              ['d1', 'x{}', 'd2', '$$', 'd3', 'y', 'd4', 'z'], [[0], [0]], []),
    niah_case(dict(haystack='essay', value='numbers', numK=1, numV=4, numQ=1), 50, ['k{}', '1', '$&', "$'", '4'], [],
              [[13, 51, 0, 100], [0]], sents),
    niah_case(dict(haystack='essay', value='numbers', numK=1, numV=1, numQ=4), 50,
              ['$&', '1', "$'", '2', '$$', '3', '{context}', '4'], [], [[28, 95, 97, 5], [2, 0, 3, 1]], sents),
    niah_case(dict(haystack='essay', value='words', numK=4, numV=1, numQ=1), 50,
              ['a', 'x', 'b', 'y', '{query}', '$`', 'd', '$1'], [], [[100, 100, 0, 0], [2]], sents),
]

# ---- variable_tracking.py generate_input_output, randomize_icl and main()'s example text
def vt_ns(r, max_len):
    args = types.SimpleNamespace(type_haystack='noise', num_hops=4, max_seq_length=max_len,
                                 template=TASKS['variable_tracking']['template'] + TASKS['variable_tracking']['answer_prefix'])
    ns = {'args': args, 'random': r, 'np': types.SimpleNamespace(random=r), 'string': string, 'TASKS': TASKS}
    load(RULER, RULER_COMMIT, 'scripts/data/synthetic/variable_tracking.py', ['generate_chains', 'generate_input_output', 'randomize_icl'], ns)
    ns['haystack'] = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    return ns

def vt_case(icl_n, icl_names, icl_pos, n, names, value, pos, new_names, new_value):
    r = Queue(choices=[list(x) for x in icl_names + names + new_names], sample=[icl_pos, pos], randint=[value, new_value])
    ns = vt_ns(r, 4096)
    icl_input, icl_vars = ns['generate_input_output'](icl_n, 1, 4, is_icl=True)
    icl_example = icl_input + " " + ' '.join(icl_vars) + '\n'  # sys_vartrack_w_noise_random, add_fewshot
    input_text, answer = ns['generate_input_output'](n, 1, 4, is_icl=False)
    cutoff = input_text.index(TASKS['variable_tracking']['template'][:20])  # the sample loop's insertion
    full = input_text[:cutoff] + ns['randomize_icl'](icl_example) + '\n' + input_text[cutoff:]
    r.done()
    return {'icl': {'n': icl_n, 'names': icl_names, 'positions': icl_pos, 'text': icl_example},
            'n': n, 'names': names, 'value': str(value), 'positions': pos, 'new_names': new_names, 'new_value': str(new_value),
            'full': full, 'answers': answer, **split(full, TASKS['variable_tracking']['answer_prefix'])}

out['vt'] = [
    vt_case(8, ['ABC', 'DEF', 'GHI', 'JKL', 'MNO'], [0, 2, 3, 5, 7], 12, ['QWERT', 'ASDFG', 'ZXCVB', 'POIUY', 'LKJHG'], 54321,
            [11, 1, 4, 6, 9], ['XYZ', 'UVW', 'RST', 'OPQ', 'LMN'], 98765),
    # a new name that is a later old name, and an old name that is "VAR": str.replace, one after the other
    vt_case(5, ['VAR', 'ABD', 'ABE', 'ABF', 'ABG'], [0, 1, 2, 3, 4], 5, ['AAAAA', 'BBBBB', 'CCCCC', 'DDDDD', 'EEEEE'], 10000,
            [4, 3, 2, 1, 0], ['ABE', 'QQQ', 'RRR', 'SSS', 'TTT'], 99998),
]

# ---- common_words_extraction.py generate_input_output (get_example's shuffle left as is)
def cwe_case(max_len, example, picked):
    r = Queue(sample=[example, picked])
    args = types.SimpleNamespace(max_seq_length=max_len, num_fewshot=1, num_cw=10, freq_cw=30, freq_ucw=3, random_seed=42,
                                 template=TASKS['common_words_extraction']['template'] + TASKS['common_words_extraction']['answer_prefix'])
    ns = {'args': args, 'random': r, 'words': sorted(set(example + picked)), 'randle_words': []}
    load(RULER, RULER_COMMIT, 'scripts/data/synthetic/common_words_extraction.py', ['get_example', 'generate_input_output'], ns)
    full, answer = ns['generate_input_output'](len(picked))
    r.done()
    return {'max_seq_length': max_len, 'example': example, 'picked': picked, 'full': full, 'answers': answer,
            **split(full, TASKS['common_words_extraction']['answer_prefix'])}

w = [f'w{i:02d}' for i in range(60)]
out['cwe'] = [cwe_case(2048, w[:20], w[20:35] + ['$&', "$'", '{}', '$$']), cwe_case(8192, w[:40], w[40:60] + ['$&', '{query}'])]

# ---- freq_words_extraction.py generate_input_output (its tokenizer loop not entered: a one-token stub)
def fwe_case(vocab_size, num_words, coded):
    r = Queue(choices=[list(x) for x in coded])
    args = types.SimpleNamespace(random_seed=42, template=TASKS['freq_words_extraction']['template'] + TASKS['freq_words_extraction']['answer_prefix'])
    ns = {'args': args, 'random': r, 'string': string, 'np': np, 'zeta': zeta, 'TOKENIZER': types.SimpleNamespace(text_to_tokens=lambda t: [0])}
    load(RULER, RULER_COMMIT, 'scripts/data/synthetic/freq_words_extraction.py', ['generate_input_output'], ns)
    full, answer, n = ns['generate_input_output'](10**9, num_words=num_words, coded_wordlen=6, vocab_size=vocab_size, alpha=2.0)
    r.done()
    return {'vocab_size': vocab_size, 'num_words': num_words, 'coded': coded, 'full': full, 'answers': answer,
            **split(full, TASKS['freq_words_extraction']['answer_prefix'])}

coded = [''.join(chr(97 + (i * 7 + j * 3) % 26) for j in range(6)) for i in range(12)]
out['fwe'] = [fwe_case(12, 60, coded)]
# gen_text's counts: (num_words*(k**-alpha)/zeta(alpha)).astype(int)
grid = []
for size in (5, 81, 655):
    for num_words in (7, 100, 1013, 12345, 99999, 654321):
        k = np.arange(1, size + 1)
        grid.append({'size': size, 'num_words': num_words, 'counts': [int(x) for x in (num_words * (k ** -2.0) / zeta(2.0)).astype(int)]})
out['fwe_counts'] = grid

# ---- qa.py generate_input_output (all documents, in their order: random.sample and shuffle not used)
def qa_case(docs, question):
    r = Queue()
    args = types.SimpleNamespace(random_seed=42, template=TASKS['qa']['template'] + TASKS['qa']['answer_prefix'])
    ns = {'args': args, 'random': r, 'DOCS': docs, 'QAS': [{'query': question, 'outputs': ['x'], 'context': [0]}]}
    load(RULER, RULER_COMMIT, 'scripts/data/synthetic/qa.py', ['DOCUMENT_PROMPT', 'generate_input_output'], ns)
    full, _ = ns['generate_input_output'](0, len(docs))
    return {'docs': docs, 'question': question, 'full': full, **split(full, TASKS['qa']['answer_prefix'])}

out['qa'] = [qa_case(['Doc $& one.', 'Title {}\nBody $$ two.', "Three $'."], q) for q in
             ['Who lit the lamp?', 'What does $& mean?', "Is $' after?", 'Cost $$5 or $1?', 'Braces {} and {context} and {query}?', 'What is $`?']]

# ---- Quest evaluation/passkey/passkey.py generate_prompt and test_model's split
def passkey_case(n_garbage, depth, draws):
    r = Queue(randint=draws)
    ns = {'random': r}
    load(QUEST, QUEST_COMMIT, 'evaluation/passkey/passkey.py', ['generate_prompt'], ns)
    prompt, key, _, _ = ns['generate_prompt'](n_garbage, depth)
    r.done()
    q_length = 400  # test_model
    return {'n_garbage': n_garbage, 'depth': depth, 'draws': draws, 'prompt': prompt, 'key': key, 'prefix': len(prompt.split('\n')[1]),
            'context': prompt[:-q_length], 'question': prompt[-q_length:]}

out['passkey'] = [passkey_case(1000, 37, [4242]), passkey_case(0, 50, [1]), passkey_case(777, 100, [50000]),
                  passkey_case(5000, 0, [1234, 31337]), passkey_case(900, 33, [7])]
open(OUT, 'w').write(json.dumps(out, ensure_ascii=False, separators=(',', ':')) + '\n')
print('wrote', OUT)
