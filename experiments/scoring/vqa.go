package scoring

import (
	"fmt"
	"strings"
	"unicode"
)

// NumVQAAnswers is the number of human answers per VQAv2 question; the
// leave-one-out accuracy is defined over exactly this many.
const NumVQAAnswers = 10

// VQAItem is one question: the model's answer and the ten human answers.
type VQAItem struct {
	ID         string
	Prediction string
	Answers    []string
}

// VQAScores is the VQAv2 accuracy of a set of answers.
type VQAScores struct {
	// Accuracy is the mean per-question accuracy × 100 (0–100), unrounded
	// (vqaEval.py rounds its printed overall to 2 decimals).
	Accuracy float64
	PerItem  []VQAItemScore
}

// VQAItemScore is one question's accuracy on a 0–1 scale.
type VQAItemScore struct {
	ID       string
	Accuracy float64
}

// VQA scores answers as the official VQA evaluation (vqaEval.py, 2021)
// does. Per question: newlines and tabs become spaces and both sides are
// stripped; only when the ten human answers are not all identical are they
// and the prediction normalised (NormalizeVQAAnswer); then accuracy =
// mean over the ten leave-one-out subsets of min(1, matches among the other
// nine / 3), with exact string matches.
//
// The official script's quirk is reproduced on purpose: when all ten
// answers agree nothing is normalised, so "Yes" against ten "yes" scores 0
// and "2" against ten "two" scores 0.
func VQA(items []VQAItem) (VQAScores, error) {
	if len(items) == 0 {
		return VQAScores{}, ErrNoItems
	}
	seen := make(map[string]int, len(items))
	s := VQAScores{PerItem: make([]VQAItemScore, len(items))}
	var sum float64
	for i, it := range items {
		if j, dup := seen[it.ID]; dup {
			return VQAScores{}, fmt.Errorf("item %d: id %q already used by item %d", i, it.ID, j)
		}
		seen[it.ID] = i
		if len(it.Answers) != NumVQAAnswers {
			return VQAScores{}, fmt.Errorf("item %d (id %q): %d human answers, want %d", i, it.ID, len(it.Answers), NumVQAAnswers)
		}
		acc := vqaAccuracy(it.Prediction, it.Answers)
		s.PerItem[i] = VQAItemScore{ID: it.ID, Accuracy: acc}
		sum += acc
	}
	s.Accuracy = 100 * sum / float64(len(items))
	return s, nil
}

// vqaAccuracy is one question's accuracy (0–1).
func vqaAccuracy(pred string, answers []string) float64 {
	gts := make([]string, len(answers))
	distinct := false
	for i, a := range answers {
		gts[i] = cleanWhitespace(a)
		distinct = distinct || gts[i] != gts[0]
	}
	res := cleanWhitespace(pred)
	if distinct {
		for i := range gts {
			gts[i] = processDigitArticle(processPunctuation(gts[i]))
		}
		res = processDigitArticle(processPunctuation(res))
	}
	var sum float64
	for i := range gts {
		matches := 0
		for j, g := range gts {
			if j != i && g == res {
				matches++
			}
		}
		sum += min(1, float64(matches)/3)
	}
	return sum / float64(len(gts))
}

// NormalizeVQAAnswer is the official normalisation of one answer: newlines
// and tabs to spaces, strip, then processPunctuation and
// processDigitArticle. Scoring applies it only when the human answers
// disagree (see VQA); callers comparing answers themselves (e.g. to pick
// the most common human answer) use it directly.
//
//	NormalizeVQAAnswer("Two dogs!")  == "2 dogs"
//	NormalizeVQAAnswer("the dont")   == "don't"
//	NormalizeVQAAnswer("1,000")      == "1000"
func NormalizeVQAAnswer(s string) string {
	return processDigitArticle(processPunctuation(cleanWhitespace(s)))
}

// cleanWhitespace is vqaEval's replace('\n', ' '), replace('\t', ' '),
// strip().
func cleanWhitespace(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "\t", " ")
	return strings.TrimFunc(s, isPySpace)
}

// isPySpace is Python's str.isspace for one character: Go's unicode.IsSpace
// plus the ASCII separators U+001C..U+001F, which Python also splits on.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// vqaPunct is vqaEval's punct list.
const vqaPunct = ";/[]\"{}()=+\\_-><@`,?!"

// processPunctuation is vqaEval's processPunctuation. For each punctuation
// character p: if p is next to a space anywhere in the input, or the input
// has a digit,digit comma anywhere, every p is deleted; otherwise every p
// becomes a space. Then periods not followed by a digit are deleted — the
// pattern "(?!<=\d)(\.)(?!\d)" is a broken lookbehind that only checks what
// follows — and at most 32 of them, because re.UNICODE (32) is passed as
// re.sub's count argument. Both quirks are reproduced.
func processPunctuation(in string) string {
	out := in
	commaDigits := hasDigitCommaDigit(in)
	for _, p := range vqaPunct {
		ps := string(p)
		if commaDigits || strings.Contains(in, ps+" ") || strings.Contains(in, " "+ps) {
			out = strings.ReplaceAll(out, ps, "")
		} else {
			out = strings.ReplaceAll(out, ps, " ")
		}
	}
	return stripPeriods(out, 32)
}

// hasDigitCommaDigit is re.search(r"(\d)(\,)(\d)", s); Python's \d is any
// Unicode decimal digit, as unicode.IsDigit.
func hasDigitCommaDigit(s string) bool {
	rs := []rune(s)
	for i := 1; i+1 < len(rs); i++ {
		if rs[i] == ',' && unicode.IsDigit(rs[i-1]) && unicode.IsDigit(rs[i+1]) {
			return true
		}
	}
	return false
}

// stripPeriods deletes the first limit periods not followed by a digit,
// judging "followed by" in the input as re.sub does.
func stripPeriods(s string, limit int) string {
	if !strings.Contains(s, ".") {
		return s
	}
	rs := []rune(s)
	var b strings.Builder
	removed := 0
	for i, r := range rs {
		if r == '.' && removed < limit && (i+1 == len(rs) || !unicode.IsDigit(rs[i+1])) {
			removed++
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// vqaNumbers is vqaEval's manualMap: number words to digits ("none" too).
var vqaNumbers = map[string]string{
	"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
	"five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

// processDigitArticle is vqaEval's processDigitArticle: lower-case, split
// on whitespace, number words to digits, drop a/an/the, restore
// contractions, join with single spaces.
func processDigitArticle(in string) string {
	words := strings.FieldsFunc(lowerFull(in), isPySpace)
	out := words[:0]
	for _, w := range words {
		if d, ok := vqaNumbers[w]; ok {
			w = d
		}
		if w == "a" || w == "an" || w == "the" {
			continue
		}
		if c, ok := vqaContractions[w]; ok {
			w = c
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// vqaContractions is vqaEval's contractions table, copied entry for entry
// with its oddities: the keys with capitals (Id've, Im, Ive, ...) can never
// match after lower-casing, "somebody'd" maps to "somebodyd", and several
// entries map a word to itself.
var vqaContractions = map[string]string{
	"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
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
	"youll": "you'll", "youre": "you're", "youve": "you've",
}
