#!/usr/bin/python3
"""Writes golden_caption.json and golden_vqa.json for the Go scorers' tests.

The scorers below re-implement, statement for statement, pycocoevalcap's
CiderScorer (cider/cider_scorer.py, with the later "skip a zero norm" guard),
BleuScorer (bleu/bleu_scorer.py, option 'closest') and the official VQA
evaluation's accuracy (vqaEval.py, 2021: normalise only when the ten human
answers differ, exact match, leave-one-out). The inputs are random but
seeded, so a rerun writes the same files:

    cd experiments/scoring/testdata && /usr/bin/python3 gen_golden.py

Captions are already PTB-tokenised (lower-case words, no punctuation), the
form pycocoevalcap's scorers receive after its Java tokenizer, so the Go
side's PTBTokenize leaves them unchanged. Needs only numpy.
"""
import json
import random
import re
from collections import defaultdict

import numpy as np


# ---------------------------------------------------------------- CIDEr-D

def precook(s, n=4):
    words = s.split()
    counts = defaultdict(int)
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i:i + k])] += 1
    return counts


def cider(tests, refss, n=4, sigma=6.0):
    crefs = [[precook(r, n) for r in refs] for refs in refss]
    ctest = [precook(t, n) for t in tests]
    document_frequency = defaultdict(float)
    for refs in crefs:
        for ngram in set([ngram for ref in refs for (ngram, count) in ref.items()]):
            document_frequency[ngram] += 1
    ref_len = np.log(float(len(crefs)))

    def counts2vec(cnts):
        vec = [defaultdict(float) for _ in range(n)]
        length = 0
        norm = [0.0 for _ in range(n)]
        for (ngram, term_freq) in cnts.items():
            df = np.log(max(1.0, document_frequency[ngram]))
            k = len(ngram) - 1
            vec[k][ngram] = float(term_freq) * (ref_len - df)
            norm[k] += pow(vec[k][ngram], 2)
            if k == 1:
                length += term_freq
        norm = [np.sqrt(x) for x in norm]
        return vec, norm, length

    def sim(vec_hyp, vec_ref, norm_hyp, norm_ref, length_hyp, length_ref):
        delta = float(length_hyp - length_ref)
        val = np.array([0.0 for _ in range(n)])
        for k in range(n):
            for (ngram, count) in vec_hyp[k].items():
                val[k] += min(vec_hyp[k][ngram], vec_ref[k][ngram]) * vec_ref[k][ngram]
            if (norm_hyp[k] != 0) and (norm_ref[k] != 0):
                val[k] /= (norm_hyp[k] * norm_ref[k])
            val[k] *= np.e ** (-(delta ** 2) / (2 * sigma ** 2))
        return val

    scores = []
    for test, refs in zip(ctest, crefs):
        vec, norm, length = counts2vec(test)
        score = np.array([0.0 for _ in range(n)])
        for ref in refs:
            vec_ref, norm_ref, length_ref = counts2vec(ref)
            score += sim(vec, vec_ref, norm, norm_ref, length, length_ref)
        score_avg = np.mean(score)
        score_avg /= len(refs)
        score_avg *= 10.0
        scores.append(score_avg)
    return float(np.mean(np.array(scores))), [float(s) for s in scores]


# ------------------------------------------------------------------- BLEU

def bleu_precook(s, n=4):
    words = s.split()
    return len(words), precook(s, n)


def cook_refs(refs, n=4):
    reflen = []
    maxcounts = {}
    for ref in refs:
        rl, counts = bleu_precook(ref, n)
        reflen.append(rl)
        for (ngram, count) in counts.items():
            maxcounts[ngram] = max(maxcounts.get(ngram, 0), count)
    return reflen, maxcounts


def cook_test(test, cooked_refs, n=4):
    reflen, refmaxcounts = cooked_refs
    testlen, counts = bleu_precook(test, n)
    result = {"reflen": reflen, "testlen": testlen,
              "guess": [max(0, testlen - k + 1) for k in range(1, n + 1)],
              "correct": [0] * n}
    for (ngram, count) in counts.items():
        result["correct"][len(ngram) - 1] += min(refmaxcounts.get(ngram, 0), count)
    return result


def bleu(tests, refss, n=4):
    small = 1e-9
    tiny = 1e-15
    ctest = [cook_test(t, cook_refs(refs, n), n) for t, refs in zip(tests, refss)]
    testlen_total = 0
    reflen_total = 0
    totalcomps = {'guess': [0] * n, 'correct': [0] * n}
    for comps in ctest:
        testlen = comps['testlen']
        testlen_total += testlen
        reflen = min((abs(l - testlen), l) for l in comps['reflen'])[1]
        reflen_total += reflen
        for key in ['guess', 'correct']:
            for k in range(n):
                totalcomps[key][k] += comps[key][k]
    bleus = []
    for nn in range(1, n + 1):
        b = 1.
        for k in range(nn):
            b *= float(totalcomps['correct'][k] + tiny) / (totalcomps['guess'][k] + small)
        bleus.append(b ** (1. / nn))
        ratio = (testlen_total + tiny) / (reflen_total + small)
        if ratio < 1:
            bleus[nn - 1] *= np.exp(1 - 1 / ratio)
    return [float(b) for b in bleus]


# -------------------------------------------------------------------- VQA

contractions = {"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've",
    "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've",
    "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd", "thered've": "there'd've",
    "there'dve": "there'd've", "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've",
    "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've"}
manualMap = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4',
             'five': '5', 'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
articles = ['a', 'an', 'the']
periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
commaStrip = re.compile(r"(\d)(\,)(\d)")
punct = [';', r"/", '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-',
         '>', '<', '@', '`', ',', '?', '!']


def processPunctuation(inText):
    outText = inText
    for p in punct:
        if (p + ' ' in inText or ' ' + p in inText) or (re.search(commaStrip, inText) != None):
            outText = outText.replace(p, '')
        else:
            outText = outText.replace(p, ' ')
    outText = periodStrip.sub("", outText, re.UNICODE)
    return outText


def processDigitArticle(inText):
    outText = []
    tempText = inText.lower().split()
    for word in tempText:
        word = manualMap.setdefault(word, word)
        if word not in articles:
            outText.append(word)
    for wordId, word in enumerate(outText):
        if word in contractions:
            outText[wordId] = contractions[word]
    return ' '.join(outText)


def vqa_accuracy(resAns, answers):
    gts = [{'answer': a, 'answer_id': i + 1} for i, a in enumerate(answers)]
    for ansDic in gts:
        ansDic['answer'] = ansDic['answer'].replace('\n', ' ').replace('\t', ' ').strip()
    resAns = resAns.replace('\n', ' ').replace('\t', ' ').strip()
    gtAcc = []
    gtAnswers = [ans['answer'] for ans in gts]
    if len(set(gtAnswers)) > 1:
        for ansDic in gts:
            ansDic['answer'] = processPunctuation(ansDic['answer'])
            ansDic['answer'] = processDigitArticle(ansDic['answer'])
        resAns = processPunctuation(resAns)
        resAns = processDigitArticle(resAns)
    for gtAnsDatum in gts:
        otherGTAns = [item for item in gts if item != gtAnsDatum]
        matchingAns = [item for item in otherGTAns if item['answer'] == resAns]
        acc = min(1, float(len(matchingAns)) / 3)
        gtAcc.append(acc)
    return float(sum(gtAcc)) / len(gtAcc)


# ------------------------------------------------------------------ cases

VOCAB = ("a the red blue green small large circle square triangle on left right "
         "of and two three near top bottom").split()


def sentence(rng, lo, hi):
    return ' '.join(rng.choice(VOCAB) for _ in range(rng.randint(lo, hi)))


def caption_case(rng, name, n_images):
    items = []
    for i in range(n_images):
        refs = [sentence(rng, 1, 12) for _ in range(rng.randint(1, 5))]
        # Often start from a reference so that long n-grams match too.
        pred = rng.choice([sentence(rng, 0, 12), rng.choice(refs),
                           ' '.join(rng.choice(refs).split()[:rng.randint(0, 6)])])
        items.append({'id': 'img%d' % i, 'prediction': pred, 'references': refs})
    tests = [it['prediction'] for it in items]
    refss = [it['references'] for it in items]
    c, per = cider(tests, refss)
    return {'name': name, 'items': items, 'cider': c, 'cider_per_item': per, 'bleu': bleu(tests, refss)}


ANSWER_POOL = ["yes", "Yes", "no", "No.", "2", "two", "Two", "a dog", "the dog", "dog", "dogs",
               "dont", "don't", "red.", "red", "1,000", "1000", "3.5", "none", "0", " yes ",
               "yes\n", "up/down", "up down", "left-right", "it's", "its", "what?", "What? ",
               "#1", "ten", "10", "Im", "hes", "he's", "a.b", "e.g. cat", "x , y", "x,y",
               "(left)", "left", "blue & white", "\"quoted\"", "red-and-white", "tennis racket",
               "5 . 6", "an apple", "The Apple", "3 pm", "3pm"]


def vqa_case(rng, n_questions):
    items = []
    for q in range(n_questions):
        kind = rng.random()
        if kind < 0.3:
            answers = [rng.choice(ANSWER_POOL)] * 10
        else:
            sub = rng.sample(ANSWER_POOL, rng.randint(2, 4))
            answers = [rng.choice(sub) for _ in range(10)]
        pred = rng.choice([rng.choice(answers), rng.choice(ANSWER_POOL)])
        items.append({'id': 'q%d' % q, 'prediction': pred, 'answers': answers,
                      'accuracy': vqa_accuracy(pred, answers)})
    overall = 100 * float(sum(it['accuracy'] for it in items)) / len(items)
    return items, overall


def main():
    rng = random.Random(20261126)
    cases = [caption_case(rng, 'one image', 1),
             caption_case(rng, 'two images', 2),
             caption_case(rng, 'twenty images', 20),
             caption_case(rng, 'eighty images', 80)]
    with open('golden_caption.json', 'w') as f:
        json.dump({'generator': 'gen_golden.py', 'cases': cases}, f, indent=1)
        f.write('\n')

    items, overall = vqa_case(rng, 300)
    norm = sorted(set(ANSWER_POOL + ["Two dogs!", "the dont", "1,000", "a man's hat", "..yes..",
                                     "1.5.", "x;y", "x; y", "A/B", "no.1", "3,4 and 5",
                                     "Somebody'd", "ow's'at", "IM", "y'allll", "\u0130", "ΟΔΟΣ ΣΑ",
                                     "a." * 40] + list(contractions)))
    normalized = [{'input': s, 'output': processDigitArticle(processPunctuation(
        s.replace('\n', ' ').replace('\t', ' ').strip()))} for s in norm]
    with open('golden_vqa.json', 'w') as f:
        json.dump({'generator': 'gen_golden.py', 'items': items, 'accuracy': overall,
                   'normalized': normalized}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
