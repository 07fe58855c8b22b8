package scoring

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// maxOrder is the longest n-gram CIDEr-D and BLEU count (both use 1..4).
const maxOrder = 4

// ciderSigma is CIDEr-D's σ: the Gaussian length penalty's width in words.
const ciderSigma = 6.0

// BLEU's smoothing constants from pycocoevalcap's bleu_scorer.py: tiny keeps
// a zero n-gram match from making the product exactly 0 before the root
// (so "no 4-gram matches" still yields a tiny positive BLEU-4), small keeps
// a zero guess count from dividing by zero.
const (
	bleuTiny  = 1e-15
	bleuSmall = 1e-9
)

// ErrNoItems: an evaluated set with nothing in it has no score.
var ErrNoItems = errors.New("no items to score")

// CaptionItem is one image of a captioning evaluation: the model's caption
// and the human references, all as raw text (tokenised here).
type CaptionItem struct {
	ID         string
	Prediction string
	References []string
}

// CaptionScores are the corpus scores of a captioning evaluation, with each
// item's share.
type CaptionScores struct {
	// CIDEr is CIDEr-D on pycocoevalcap's scale (×10; 0 to about 10, higher
	// is better): the mean of PerItem[i].CIDEr.
	CIDEr float64
	// BLEU[n-1] is corpus BLEU-n (0–1), n = 1..4.
	BLEU    [maxOrder]float64
	PerItem []CaptionItemScore
}

// CaptionItemScore is one item's CIDEr-D within the set and its BLEU-4 as
// a one-item corpus (the same formula, so short captions get the brevity
// penalty and a missing 4-gram gives ~0).
type CaptionItemScore struct {
	ID    string
	CIDEr float64
	BLEU4 float64
}

// Caption scores predictions against references as pycocoevalcap does:
// every text through PTBTokenize, then CIDEr-D (Cider) and BLEU-1..4 (Bleu,
// option "closest"). IDs must be unique and every item needs at least one
// reference; the error names the offending item.
func Caption(items []CaptionItem) (CaptionScores, error) {
	if len(items) == 0 {
		return CaptionScores{}, ErrNoItems
	}
	seen := make(map[string]int, len(items))
	hyps := make([][]string, len(items))
	refs := make([][][]string, len(items))
	for i, it := range items {
		if j, dup := seen[it.ID]; dup {
			return CaptionScores{}, fmt.Errorf("item %d: id %q already used by item %d", i, it.ID, j)
		}
		seen[it.ID] = i
		if len(it.References) == 0 {
			return CaptionScores{}, fmt.Errorf("item %d (id %q): no references", i, it.ID)
		}
		hyps[i] = PTBTokenize(it.Prediction)
		refs[i] = make([][]string, len(it.References))
		for k, r := range it.References {
			refs[i][k] = PTBTokenize(r)
		}
	}
	perCIDEr := ciderD(hyps, refs)
	s := CaptionScores{BLEU: bleu(hyps, refs), PerItem: make([]CaptionItemScore, len(items))}
	for i, it := range items {
		s.PerItem[i] = CaptionItemScore{ID: it.ID, CIDEr: perCIDEr[i], BLEU4: bleu(hyps[i:i+1], refs[i:i+1])[maxOrder-1]}
		s.CIDEr += perCIDEr[i]
	}
	s.CIDEr /= float64(len(items))
	return s, nil
}

// ngrams holds a sentence's n-gram counts per order, with the n-grams in
// first-occurrence order so sums run in the order pycocoevalcap's dicts
// iterate (the last bits of a float sum depend on it).
type ngrams struct {
	words int
	keys  [maxOrder][]string
	count [maxOrder]map[string]int
}

// countNgrams is pycocoevalcap's precook. An n-gram's key is its words
// joined by spaces, which tokens never contain.
func countNgrams(words []string) ngrams {
	g := ngrams{words: len(words)}
	for k := range maxOrder {
		g.count[k] = make(map[string]int)
		for i := 0; i+k < len(words); i++ {
			key := strings.Join(words[i:i+k+1], " ")
			if g.count[k][key] == 0 {
				g.keys[k] = append(g.keys[k], key)
			}
			g.count[k][key]++
		}
	}
	return g
}

// tfidf is one sentence's CIDEr vector per order, its norms, and the
// length the Gaussian penalty compares.
type tfidf struct {
	w      [maxOrder]map[string]float64
	keys   *[maxOrder][]string
	norm   [maxOrder]float64
	length float64
}

// ciderD returns each image's CIDEr-D, pycocoevalcap's CiderScorer:
//
//	df(g)   = number of images whose references contain n-gram g
//	w(g)    = tf(g) · (log N − log max(1, df(g)))     N = number of images
//	sim_n   = Σ_g min(w_h(g), w_r(g)) · w_r(g) / (‖w_h‖ ‖w_r‖)   (0 if a norm is 0)
//	          · exp(−Δ² / (2σ²))
//	score   = 10 · mean_n( mean_refs sim_n )
//
// Δ is the difference of the two "lengths", which pycocoevalcap counts as
// the number of bigrams (its counts2vec adds term frequencies where the
// order index n == 1, i.e. bigrams): one fewer than the word count, and 0
// for an empty or one-word sentence. That quirk is reproduced.
func ciderD(hyps [][]string, refs [][][]string) []float64 {
	hg := make([]ngrams, len(hyps))
	rg := make([][]ngrams, len(refs))
	df := make(map[string]float64)
	for i := range hyps {
		hg[i] = countNgrams(hyps[i])
		rg[i] = make([]ngrams, len(refs[i]))
		inImage := make(map[string]bool)
		for k, r := range refs[i] {
			rg[i][k] = countNgrams(r)
			for n := range maxOrder {
				for _, key := range rg[i][k].keys[n] {
					inImage[key] = true
				}
			}
		}
		for key := range inImage {
			df[key]++
		}
	}
	logN := math.Log(float64(len(hyps)))
	vec := func(g *ngrams) tfidf {
		v := tfidf{keys: &g.keys}
		for n := range maxOrder {
			v.w[n] = make(map[string]float64, len(g.keys[n]))
			for _, key := range g.keys[n] {
				tf := g.count[n][key]
				x := float64(tf) * (logN - math.Log(math.Max(1, df[key])))
				v.w[n][key] = x
				v.norm[n] += x * x
				if n == 1 {
					v.length += float64(tf)
				}
			}
			v.norm[n] = math.Sqrt(v.norm[n])
		}
		return v
	}
	scores := make([]float64, len(hyps))
	for i := range hyps {
		h := vec(&hg[i])
		var sum [maxOrder]float64
		for k := range rg[i] {
			r := vec(&rg[i][k])
			delta := h.length - r.length
			for n := range maxOrder {
				var val float64
				for _, key := range h.keys[n] {
					wr := r.w[n][key]
					val += math.Min(h.w[n][key], wr) * wr
				}
				if h.norm[n] != 0 && r.norm[n] != 0 {
					val /= h.norm[n] * r.norm[n]
				}
				val *= math.Pow(math.E, -(delta*delta)/(2*ciderSigma*ciderSigma))
				sum[n] += val
			}
		}
		var mean float64
		for n := range maxOrder {
			mean += sum[n]
		}
		mean /= maxOrder
		scores[i] = mean / float64(len(rg[i])) * 10
	}
	return scores
}

// bleu returns corpus BLEU-1..4 as pycocoevalcap's BleuScorer with option
// "closest":
//
//	correct_n = Σ_images Σ_g min(count_h(g), max_refs count_r(g))
//	guess_n   = Σ_images max(0, len_h − n + 1)
//	reflen    = Σ_images the reference length closest to len_h (ties → shorter)
//	BLEU-N    = (Π_{n≤N} (correct_n + tiny)/(guess_n + small))^(1/N)
//	            · exp(1 − 1/ratio) when ratio = (testlen + tiny)/(reflen + small) < 1
//
// Because of tiny and small, a hypothesis exactly as long as its closest
// reference still has ratio just below 1 and a brevity penalty of
// 1 − ~1e-10; that is the reference's number and is kept.
func bleu(hyps [][]string, refs [][][]string) [maxOrder]float64 {
	var correct, guess [maxOrder]float64
	var testLen, refLen float64
	for i, hyp := range hyps {
		maxRef := make(map[string]int)
		closest := -1
		for _, r := range refs[i] {
			g := countNgrams(r)
			for n := range maxOrder {
				for _, key := range g.keys[n] {
					maxRef[key] = max(maxRef[key], g.count[n][key])
				}
			}
			d, best := absInt(len(r)-len(hyp)), absInt(closest-len(hyp))
			if closest < 0 || d < best || d == best && len(r) < closest {
				closest = len(r)
			}
		}
		h := countNgrams(hyp)
		for n := range maxOrder {
			guess[n] += float64(max(0, len(hyp)-n))
			for _, key := range h.keys[n] {
				correct[n] += float64(min(maxRef[key], h.count[n][key]))
			}
		}
		testLen += float64(len(hyp))
		refLen += float64(closest)
	}
	var out [maxOrder]float64
	ratio := (testLen + bleuTiny) / (refLen + bleuSmall)
	for nn := 1; nn <= maxOrder; nn++ {
		p := 1.0
		for n := range nn {
			p *= (correct[n] + bleuTiny) / (guess[n] + bleuSmall)
		}
		out[nn-1] = math.Pow(p, 1/float64(nn))
		if ratio < 1 {
			out[nn-1] *= math.Exp(1 - 1/ratio)
		}
	}
	return out
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
