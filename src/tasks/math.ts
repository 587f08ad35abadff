/**
 * Long-generation math tasks from the user's JSON Lines files (as Hugging Face datasets'
 * to_json writes them): MATH-500 (HuggingFaceH4/MATH-500: problem, answer), AIME 2024
 * (Maxwell-Jia/AIME_2024: Problem, Answer; other exports: problem, answer), or any file with a
 * field map (--data-file, --data-fields). The prompt is the problem and the instruction the
 * reasoning papers use, in the model's chat template; --num-samples draws per problem, whose
 * mean score is pass@1.
 */
import { QuestError } from '../errors.js';
import { aimeScore, mathScore } from '../metrics/math.js';
import { readJsonl } from './jsonl.js';
import type { Sample, SampleOptions, Task } from './types.js';

/** The directive DeepSeek-R1's model card recommends for math problems (and issue #24 names), after the problem. */
export const MATH_INSTRUCTION = 'Please reason step by step, and put your final answer within \\boxed{}.';

/** Tokens generated unless --max-new-tokens says otherwise: lm-eval's aime24.yaml max_gen_toks (32768), the papers' 32K. */
export const LONG_GENERATION_TOKENS = 32768;

/** Field names: the problem's and the answer's, each with alternatives. */
interface Fields {
  problem: readonly string[];
  answer: readonly string[];
}

function problemTask(name: string, benchmark: string, source: string, metric: string, score: (response: string, answer: string) => number, fileOf: (o: SampleOptions) => [string, string | undefined], fieldsOf: (o: SampleOptions) => Fields): Task {
  return {
    name,
    benchmark,
    source,
    metric,
    maxNewTokens: LONG_GENERATION_TOKENS,
    longGeneration: true,
    samples(opts: SampleOptions): Sample[] {
      const [flag, file] = fileOf(opts);
      if (!file) throw new QuestError(`${name} needs ${flag}, a JSON Lines file of problems`);
      const f = fieldsOf(opts);
      const rows = readJsonl<Record<string, unknown>>(file, [f.problem, f.answer], opts.perLength);
      const field = (r: Record<string, unknown>, names: readonly string[], i: number): string => {
        const key = names.find((k) => k in r)!;
        const v = r[key];
        if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return String(v);
        throw new QuestError(`${file}: problem ${i + 1}: "${key}" must be a string or a number`);
      };
      const chat = opts.tokenizer.chat;
      return rows.flatMap((r, i) => {
        const problem = field(r, f.problem, i);
        const answer = field(r, f.answer, i);
        const message = `${problem}\n${MATH_INSTRUCTION}`;
        const context = chat ? chat.before + message + chat.after : message;
        return Array.from({ length: opts.numSamples ?? 1 }, (_, j) => ({
          id: `${name}-${i}-s${j}`,
          task: name,
          context,
          question: '',
          answers: [answer],
          meta: { problem: i, draw: j },
          ...(chat ? { chat: true } : {}),
        }));
      });
    },
    score: (prediction, sample) => score(prediction, sample.answers[0]),
  };
}

const LM_EVAL = "lm-eval 0.4.13 hendrycks_math/utils.py's is_equiv on the last \\boxed{}";

export const MATH_TASKS: Task[] = [
  problemTask('math500', 'math500', `MATH-500 (Lightman et al., 2023) from --math-file; ${LM_EVAL}`, 'is_equiv', mathScore, (o) => ['--math-file', o.mathFile], () => ({ problem: ['problem'], answer: ['answer'] })),
  problemTask('aime24', 'aime24', 'AIME 2024 from --aime-file; the last \\boxed{} as an integer', 'integer match', aimeScore, (o) => ['--aime-file', o.aimeFile], () => ({ problem: ['Problem', 'problem'], answer: ['Answer', 'answer'] })),
  problemTask('math-data', 'math-data', `problems from --data-file with --data-fields; ${LM_EVAL}`, 'is_equiv', mathScore, (o) => ['--data-file', o.dataFile], (o) => ({ problem: [o.dataFields?.problem ?? 'problem'], answer: [o.dataFields?.answer ?? 'answer'] })),
];
