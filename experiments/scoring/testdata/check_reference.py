#!/usr/bin/python3
"""Checks golden_caption.json and golden_vqa.json against the reference
implementations themselves, not gen_golden.py's transcription of them.

    python3 check_reference.py COCO_CAPTION_DIR VQA_DIR

COCO_CAPTION_DIR holds pycocoevalcap/ (tylin/coco-caption, or the
pycocoevalcap package's source tree); VQA_DIR holds the official VQA
repository's PythonEvaluationTools/. The scorers are imported from there,
fed every golden input (CiderScorer and BleuScorer exactly as
pycocoevalcap's Cider and Bleu wrappers feed them, option 'closest';
VQAEval.evaluate on answers carrying answer_id 1..10 as the VQA
annotations do) and their numbers compared with the goldens. Needs numpy
and, for coco-caption's Python 3 port, the 'future' package. Exits 1 on
any difference above 1e-12.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings('ignore')  # the reference code's invalid escape sequences
HERE = os.path.dirname(os.path.abspath(__file__))


class _QA:
    """The two members of the VQA API class that VQAEval reads."""

    def __init__(self, qa):
        self.qa = qa

    def getQuesIds(self):
        return list(self.qa)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[2], 'PythonEvaluationTools')]
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer
    from pycocoevalcap.cider.cider_scorer import CiderScorer
    from vqaEvaluation.vqaEval import VQAEval

    worst = 0.0
    golden = json.load(open(os.path.join(HERE, 'golden_caption.json')))
    for case in golden['cases']:
        cider, bleu = CiderScorer(n=4, sigma=6.0), BleuScorer(n=4)
        for it in case['items']:
            cider += (it['prediction'], it['references'])
            bleu += (it['prediction'], it['references'])
        c, per = cider.compute_score()
        b, _ = bleu.compute_score(option='closest', verbose=0)
        diffs = [abs(c - case['cider'])] + [abs(x - y) for x, y in zip(per, case['cider_per_item'])] + \
                [abs(x - y) for x, y in zip(b, case['bleu'])]
        print('%-15s CIDEr %.15g  BLEU-4 %.15g  max |diff| %.3g' % (case['name'], c, b[3], max(diffs)))
        worst = max(worst, max(diffs))

    golden = json.load(open(os.path.join(HERE, 'golden_vqa.json')))
    gts = {it['id']: {'answers': [{'answer': a, 'answer_id': i + 1} for i, a in enumerate(it['answers'])],
                      'question_type': 'q', 'answer_type': 'a'} for it in golden['items']}
    res = {it['id']: {'answer': it['prediction']} for it in golden['items']}
    ev = VQAEval(_QA(gts), _QA(res), n=2)
    ev.evaluate()
    # VQAEval keeps accuracies rounded to 2 decimals (×100); compare at that precision.
    diffs = [abs(ev.evalQA[it['id']] - round(100 * it['accuracy'], 2)) for it in golden['items']]
    diffs.append(abs(ev.accuracy['overall'] - round(golden['accuracy'], 2)))
    print('VQA            accuracy %.2f over %d questions  max |diff| %.3g' % (ev.accuracy['overall'], len(golden['items']), max(diffs)))
    worst = max(worst, max(diffs))
    bad = [n['input'] for n in golden['normalized']
           if ev.processDigitArticle(ev.processPunctuation(n['input'].replace('\n', ' ').replace('\t', ' ').strip())) != n['output']]
    print('VQA            normalisation: %d cases, %d differ %r' % (len(golden['normalized']), len(bad), bad[:5]))
    print('largest difference: %.3g' % worst)
    sys.exit(1 if worst > 1e-12 or bad else 0)


if __name__ == '__main__':
    main()
